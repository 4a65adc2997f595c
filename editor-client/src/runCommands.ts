// Starting, cancelling and resuming runs. Starting and resuming execute the workflow's commands,
// so both are refused in a workspace that is not trusted.
import * as vscode from 'vscode';
import type { CommandContext } from './commands';
import { isCancelling } from './format';
import { chosenSteps, displayPath, endedRunPicks, runPicks, stepPicks, workflowPicks, type Pick } from './picks';
import type { Run, WorkflowInfo } from './protocol';
import { logStarted } from './runNotices';
import type { RunsNode } from './runsView';

export async function runWorkflow(ctx: CommandContext): Promise<void> {
  if (!(await ensureTrusted('runs workflows'))) {
    return;
  }
  const workflows = await ctx.server.execute('treeflow.listWorkflows');
  if (!workflows.length) {
    void vscode.window.showInformationMessage('Treeflow: no workflow here. Add treeflow.yml or .treeflow/<name>.yml.');
    return;
  }
  const folders = (vscode.workspace.workspaceFolders ?? []).map((folder) => folder.uri.fsPath);
  const chosen = await vscode.window.showQuickPick(workflowPicks(workflows, folders), {
    title: 'Treeflow: Run Workflow',
    placeHolder: 'Workflow to run',
    matchOnDescription: true,
  });
  if (!chosen) {
    return;
  }
  const workflow = chosen.value;
  if (workflow.errors.length) {
    await showProblems(workflow, folders);
    return;
  }
  let steps: string[] = [];
  if (workflow.steps.length > 1) {
    const picked = await vscode.window.showQuickPick(stepPicks(workflow), {
      title: `Treeflow: Run ${workflow.name}`,
      placeHolder: 'Steps to run, each with what it needs',
      canPickMany: true,
    });
    const chosenIds = picked && chosenSteps(picked);
    if (!chosenIds) {
      return;
    }
    steps = chosenIds;
  }
  const { runId } = await ctx.server.execute('treeflow.run', { workflow: workflow.uri, steps });
  logStarted(ctx.channel, runId, workflow.name, steps);
}

/** An invalid workflow is opened with the Problems panel, which lists its errors where they are. */
async function showProblems(workflow: WorkflowInfo, folders: readonly string[]): Promise<void> {
  const name = displayPath(workflow.uri, folders).split('/').pop() ?? workflow.name;
  const count = workflow.errors.length;
  await vscode.window.showTextDocument(vscode.Uri.parse(workflow.uri));
  await vscode.commands.executeCommand('workbench.actions.view.problems');
  void vscode.window.showErrorMessage(
    `Treeflow: ${name} has ${count === 1 ? 'a problem' : `${count} problems`}; see the Problems panel.`,
  );
}

export async function cancelRun(ctx: CommandContext, node?: RunsNode): Promise<void> {
  const runId =
    node?.runId ??
    (await pickRun(ctx, {
      candidates: () => ctx.store.running().filter((run) => !isCancelling(run)),
      picks: runPicks,
      title: 'Treeflow: Cancel Run',
      placeHolder: 'Run to cancel',
      none: 'no run is running.',
    }));
  if (!runId) {
    return;
  }
  const { cancelled } = await ctx.server.execute('treeflow.cancel', { runId });
  if (!cancelled) {
    void vscode.window.showInformationMessage(`Treeflow: run ${runId} had already ended.`);
  }
}

/** Runs again the steps of a failed, cancelled or interrupted run that did not succeed. */
export async function resumeRun(ctx: CommandContext, node?: RunsNode): Promise<void> {
  if (!(await ensureTrusted('resumes runs'))) {
    return;
  }
  const runId =
    node?.runId ??
    (await pickRun(ctx, {
      candidates: () => ctx.store.resumable(),
      picks: endedRunPicks,
      title: 'Treeflow: Resume Run',
      placeHolder: 'Run to resume: its steps that did not succeed run again',
      none: 'no failed, cancelled or interrupted run to resume.',
    }));
  if (!runId) {
    return;
  }
  const workflow = ctx.store.get(runId)?.workflow;
  const { runId: resumed } = await ctx.server.execute('treeflow.resume', { runId });
  ctx.channel.info(`Resumed run ${resumed}${workflow ? ` of ${workflow}` : ''}`);
}

interface RunChoice {
  /** Read after the store is refreshed. */
  candidates(): Run[];
  picks(runs: readonly Run[]): Pick<Run>[];
  title: string;
  placeHolder: string;
  /** Said when there is no candidate. */
  none: string;
}

async function pickRun(ctx: CommandContext, choice: RunChoice): Promise<string | undefined> {
  await ctx.refresh();
  const runs = choice.candidates();
  if (!runs.length) {
    void vscode.window.showInformationMessage(`Treeflow: ${choice.none}`);
    return undefined;
  }
  const chosen = await vscode.window.showQuickPick(choice.picks(runs), {
    title: choice.title,
    placeHolder: choice.placeHolder,
  });
  return chosen?.value.run_id;
}

/** True in a trusted workspace; otherwise says why `what` is refused and offers to manage trust. */
export async function ensureTrusted(what: string, why = 'a run executes the commands in the workflow'): Promise<boolean> {
  if (vscode.workspace.isTrusted) {
    return true;
  }
  const choice = await vscode.window.showErrorMessage(
    `Treeflow ${what} only in a trusted workspace, because ${why}.`,
    'Manage Workspace Trust',
  );
  if (choice) {
    await vscode.commands.executeCommand('workbench.trust.manage');
  }
  return false;
}

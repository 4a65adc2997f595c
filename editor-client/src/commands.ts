// The palette and view commands. Failures are shown to the user, never thrown at VS Code.
import * as vscode from 'vscode';
import type { ServerClient } from './client';
import { displayPath, runPicks, stepPicks, workflowPicks } from './picks';
import type { RunStore } from './runStore';
import type { RunsNode } from './runsView';

export interface CommandContext {
  server: ServerClient;
  store: RunStore;
  channel: vscode.LogOutputChannel;
  refresh(): Promise<void>;
}

export function registerCommands(ctx: CommandContext): vscode.Disposable[] {
  const commands: Record<string, (...args: never[]) => Promise<unknown> | unknown> = {
    'treeflow.runWorkflow': () => runWorkflow(ctx),
    'treeflow.cancelRun': (node?: RunsNode) => cancelRun(ctx, node),
    'treeflow.showRuns': () => vscode.commands.executeCommand('treeflow.runs.focus'),
    'treeflow.showOutput': () => ctx.channel.show(),
    'treeflow.restartServer': () => ctx.server.restart('asked for'),
    'treeflow.refreshRuns': () => ctx.refresh(),
    'treeflow.openStepLog': (node?: RunsNode) => openStepLog(ctx, node),
    'treeflow.copyBranch': (node?: RunsNode) => copyBranch(ctx, node),
  };
  return Object.entries(commands).map(([id, handler]) =>
    vscode.commands.registerCommand(id, async (...args: never[]) => {
      try {
        await handler(...args);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        ctx.channel.error(`${id}: ${message}`);
        void vscode.window.showErrorMessage(`Treeflow: ${message}`);
      }
    }),
  );
}

async function runWorkflow(ctx: CommandContext): Promise<void> {
  if (!vscode.workspace.isTrusted) {
    const choice = await vscode.window.showErrorMessage(
      'Treeflow runs workflows only in a trusted workspace, because a run executes the commands in the workflow.',
      'Manage Workspace Trust',
    );
    if (choice) {
      await vscode.commands.executeCommand('workbench.trust.manage');
    }
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
    throw new Error(`${displayPath(workflow.uri, folders)} is not valid:\n${workflow.errors.join('\n')}`);
  }
  let steps: string[] = [];
  if (workflow.steps.length > 1) {
    const picked = await vscode.window.showQuickPick(stepPicks(workflow), {
      title: `Treeflow: Run ${workflow.name}`,
      placeHolder: 'Steps to run, with what they need (select none to run every step)',
      canPickMany: true,
    });
    if (!picked) {
      return;
    }
    steps = picked.map((pick) => pick.value);
  }
  const { runId } = await ctx.server.execute('treeflow.run', { workflow: workflow.uri, steps });
  ctx.channel.info(`Started run ${runId} of ${workflow.name}${steps.length ? ` (steps: ${steps.join(', ')})` : ''}`);
}

async function cancelRun(ctx: CommandContext, node?: RunsNode): Promise<void> {
  let runId = node?.runId;
  if (!runId) {
    await ctx.refresh();
    const running = ctx.store.running();
    if (!running.length) {
      void vscode.window.showInformationMessage('Treeflow: no run is running.');
      return;
    }
    const chosen = await vscode.window.showQuickPick(runPicks(running), {
      title: 'Treeflow: Cancel Run',
      placeHolder: 'Run to cancel',
    });
    runId = chosen?.value.run_id;
  }
  if (!runId) {
    return;
  }
  const { cancelled } = await ctx.server.execute('treeflow.cancel', { runId });
  if (!cancelled) {
    void vscode.window.showInformationMessage(`Treeflow: run ${runId} had already ended.`);
  }
}

async function openStepLog(ctx: CommandContext, node?: RunsNode): Promise<void> {
  const step = node?.kind === 'step' ? ctx.store.get(node.runId)?.steps[node.stepId] : undefined;
  if (!node || node.kind !== 'step' || !step) {
    return;
  }
  if (!step.log) {
    void vscode.window.showInformationMessage(`Treeflow: step ${node.stepId} has printed nothing.`);
    return;
  }
  await vscode.window.showTextDocument(vscode.Uri.file(step.log), { preview: true });
}

async function copyBranch(ctx: CommandContext, node?: RunsNode): Promise<void> {
  const run = node ? ctx.store.get(node.runId) : undefined;
  const branch = node?.kind === 'step' ? run?.steps[node.stepId]?.branch : run?.result_branch;
  if (!branch) {
    void vscode.window.showInformationMessage('Treeflow: no branch here: nothing was changed.');
    return;
  }
  await vscode.env.clipboard.writeText(branch);
  vscode.window.setStatusBarMessage(`Copied ${branch}`, 3000);
}

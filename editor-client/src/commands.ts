// The palette and view commands. Failures are shown to the user, never thrown at VS Code.
import * as vscode from 'vscode';
import { decideFromView } from './approvalCommands';
import type { ChangeStats } from './changeStats';
import type { ServerClient } from './client';
import { createWorkflow } from './createWorkflow';
import { applyWork, discardRun, reviewChanges, undoApply } from './reviewCommands';
import { cancelRun, resumeRun, runWorkflow } from './runCommands';
import type { RunStore } from './runStore';
import type { RunsNode } from './runsView';
import type { StepLogDocuments } from './stepLogs';
import { TranscriptDocuments } from './transcripts';

export interface CommandContext {
  server: ServerClient;
  store: RunStore;
  stats: ChangeStats;
  channel: vscode.LogOutputChannel;
  logs: StepLogDocuments;
  refresh(): Promise<void>;
}

export function registerCommands(ctx: CommandContext): vscode.Disposable[] {
  const commands: Record<string, (...args: never[]) => Promise<unknown> | unknown> = {
    'treeflow.runWorkflow': () => runWorkflow(ctx),
    'treeflow.cancelRun': (node?: RunsNode) => cancelRun(ctx, node),
    'treeflow.resumeRun': (node?: RunsNode) => resumeRun(ctx, node),
    'treeflow.approveStep': (node?: RunsNode) => decideFromView(ctx, true, node),
    'treeflow.rejectStep': (node?: RunsNode) => decideFromView(ctx, false, node),
    'treeflow.showRuns': () => vscode.commands.executeCommand('treeflow.runs.focus'),
    'treeflow.showOutput': () => ctx.channel.show(),
    'treeflow.restartServer': () => ctx.server.restart('asked for'),
    'treeflow.refreshRuns': () => ctx.refresh(),
    'treeflow.openStepLog': (node?: RunsNode) => openStepLog(ctx, node),
    'treeflow.copyBranch': (node?: RunsNode) => copyBranch(ctx, node),
    'treeflow.openAgentTranscript': (node?: RunsNode) => openAgentTranscript(node),
    'treeflow.reviewChanges': (node?: RunsNode) => reviewChanges(ctx, node),
    'treeflow.applyWorkingTree': (node?: RunsNode) => applyWork(ctx, 'working-tree', node),
    'treeflow.applySquash': (node?: RunsNode) => applyWork(ctx, 'squash', node),
    'treeflow.applyMerge': (node?: RunsNode) => applyWork(ctx, 'merge', node),
    'treeflow.undoLastApply': (node?: RunsNode) => undoApply(ctx, node),
    'treeflow.discardRun': (node?: RunsNode) => discardRun(ctx, node),
    'treeflow.createWorkflow': () => createWorkflow(ctx),
    'treeflow.openWalkthrough': () =>
      vscode.commands.executeCommand('workbench.action.openWalkthrough', 'treeflow.treeflow#start', false),
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

async function openStepLog(ctx: CommandContext, node?: RunsNode): Promise<void> {
  const step = node?.kind === 'step' ? ctx.store.get(node.runId)?.steps[node.stepId] : undefined;
  if (!node || node.kind !== 'step' || !step) {
    return;
  }
  if (!step.log) {
    void vscode.window.showInformationMessage(`Treeflow: step ${node.stepId} has printed nothing.`);
    return;
  }
  await ctx.logs.open(node.runId, node.stepId, step.log);
}

/** The step's log as the server renders it: a read-only Markdown document and its preview. */
async function openAgentTranscript(node?: RunsNode): Promise<void> {
  if (node?.kind !== 'step') {
    return;
  }
  const uri = TranscriptDocuments.uri({ runId: node.runId, stepId: node.stepId });
  // Shown in an editor, the document stays open (and is read again as the step goes on) as long as its tab.
  await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(uri), { preview: false });
  await vscode.commands.executeCommand('markdown.showPreview', uri);
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

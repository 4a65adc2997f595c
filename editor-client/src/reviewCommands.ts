// Reviewing a run's work in the multi-file diff editor and bringing it into the checkout: apply
// (working tree, squash, merge), undo, discard. Whatever changes files or branches is refused in a
// workspace that is not trusted, like running.
import * as vscode from 'vscode';
import type { CommandContext } from './commands';
import { endedRunPicks } from './picks';
import { isFinal, type ApplyMode, type ApplyResult, type Run } from './protocol';
import {
  REVISION_SCHEME,
  applyMessage,
  changeEntries,
  confirmedTips,
  contentText,
  discardDetail,
  hasResult,
  offersReview,
  reviewTitle,
  type Revision,
  type WorkTarget,
} from './review';
import { ensureTrusted } from './runCommands';
import type { RunsNode } from './runsView';

export async function reviewChanges(ctx: CommandContext, node?: RunsNode): Promise<void> {
  const target = await targetOf(ctx, node, 'Run whose changes to review');
  if (!target) {
    return;
  }
  const diff = await ctx.server.execute('treeflow.diff', target);
  const title = reviewTitle(target, ctx.store.get(target.runId));
  if (!diff.files.length) {
    void vscode.window.showInformationMessage(`Treeflow: ${title} changed nothing.`);
    return;
  }
  // The runs view holds what comes after a review: apply, undo, discard.
  await vscode.commands.executeCommand('treeflow.runs.focus');
  const entries = changeEntries(diff).map((entry) => [
    vscode.Uri.file(entry.resource),
    entry.original && revisionUri(entry.original),
    entry.modified && revisionUri(entry.modified),
  ]);
  await vscode.commands.executeCommand('vscode.changes', title, entries);
}

export async function applyWork(ctx: CommandContext, mode: ApplyMode, node?: RunsNode): Promise<void> {
  if (!(await ensureTrusted('applies runs', 'an apply changes your files'))) {
    return;
  }
  const target = await targetOf(ctx, node, 'Run whose work to apply');
  if (target) {
    await report(ctx, target, await ctx.server.execute('treeflow.apply', { ...target, mode }));
  }
}

async function report(ctx: CommandContext, target: WorkTarget, result: ApplyResult): Promise<void> {
  const { level, text } = applyMessage(result);
  ctx.channel.info(text);
  if (result.outcome !== 'conflicts') {
    const show = level === 'info' ? vscode.window.showInformationMessage : vscode.window.showWarningMessage;
    void show(`Treeflow: ${text}`);
    return;
  }
  // A commit cannot hold conflict markers: they always go into the working tree.
  const markers = 'Apply with conflict markers';
  const choice = await vscode.window.showWarningMessage(`Treeflow: ${text}`, markers, 'Cancel');
  if (choice === markers) {
    const marked = await ctx.server.execute('treeflow.apply', { ...target, mode: 'working-tree', conflicts: 'markers' });
    await report(ctx, target, marked);
  }
}

export async function undoApply(ctx: CommandContext, node?: RunsNode): Promise<void> {
  if (!(await ensureTrusted('undoes applies', 'an undo changes your files'))) {
    return;
  }
  const undone = await ctx.server.execute('treeflow.undoApply', node ? { runId: node.runId } : {});
  const count = undone.files.length;
  const text = `Undid the apply of ${undone.work}: ${count} file${count === 1 ? '' : 's'} put back.`;
  ctx.channel.info(text);
  void vscode.window.showInformationMessage(`Treeflow: ${text}`);
}

export async function discardRun(ctx: CommandContext, node?: RunsNode): Promise<void> {
  if (!(await ensureTrusted('discards runs', 'a discard deletes branches'))) {
    return;
  }
  const target = await targetOf(ctx, node, 'Run to discard: its branches are deleted', (run) => isFinal(run.status));
  if (!target) {
    return;
  }
  const plan = await ctx.server.execute('treeflow.discard', { runId: target.runId });
  if (!plan.branches.length) {
    void vscode.window.showInformationMessage(`Treeflow: run ${plan.runId} has no branches left; nothing to discard.`);
    return;
  }
  const discard = 'Discard';
  const choice = await vscode.window.showWarningMessage(
    `Discard run ${plan.runId}? Its ${plan.branches.length} branches will be deleted.`,
    { modal: true, detail: discardDetail(plan) },
    discard,
  );
  if (choice !== discard) {
    return;
  }
  const done = await ctx.server.execute('treeflow.discard', { runId: plan.runId, confirmed: confirmedTips(plan) });
  ctx.stats.forget(plan.runId);
  const kept = done.kept.length ? ` Kept ${done.kept.join(', ')}: checked out, or moved since it was listed.` : '';
  void vscode.window.showInformationMessage(`Treeflow: run ${plan.runId} discarded: ${done.deleted.length} branches deleted.${kept}`);
}

/** When a run has just succeeded with work: its change stat, and the two next steps. */
export async function offerReview(ctx: CommandContext, run: Run, before: Run | undefined): Promise<void> {
  if (!offersReview(run, before)) {
    return;
  }
  const stat = await ctx.stats.load(run);
  const review = 'Review Changes';
  const apply = 'Apply';
  const choice = await vscode.window.showInformationMessage(
    `Treeflow: ${run.workflow} succeeded${stat ? `: ${stat}` : ''}.`,
    review,
    apply,
  );
  const node: RunsNode = { kind: 'run', runId: run.run_id };
  if (choice === review) {
    await vscode.commands.executeCommand('treeflow.reviewChanges', node);
  } else if (choice === apply) {
    await vscode.commands.executeCommand('treeflow.applyWorkingTree', node);
  }
}

/** Serves the two sides of the diff editor from git's objects, through the server. */
export function registerRevisionContent(ctx: CommandContext): vscode.Disposable {
  return vscode.workspace.registerTextDocumentContentProvider(REVISION_SCHEME, {
    async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
      return contentText(await ctx.server.execute('treeflow.readFile', { rev: uri.query, path: uri.fsPath }));
    },
  });
}

function revisionUri(revision: Revision): vscode.Uri {
  return vscode.Uri.file(revision.path).with({ scheme: REVISION_SCHEME, query: revision.rev });
}

/** The node's run or step; from the palette, a finished run the user picks (`which` filters them). */
async function targetOf(
  ctx: CommandContext,
  node: RunsNode | undefined,
  placeHolder: string,
  which: (run: Run) => boolean = hasResult,
): Promise<WorkTarget | undefined> {
  if (node) {
    return { runId: node.runId, steps: node.kind === 'step' ? [node.stepId] : [] };
  }
  await ctx.refresh();
  const runs = ctx.store.list().filter(which);
  if (!runs.length) {
    void vscode.window.showInformationMessage('Treeflow: no finished run with work to take.');
    return undefined;
  }
  const chosen = await vscode.window.showQuickPick(endedRunPicks(runs), { title: 'Treeflow', placeHolder });
  return chosen && { runId: chosen.value.run_id, steps: [] };
}

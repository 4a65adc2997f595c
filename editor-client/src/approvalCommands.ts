// Approving or rejecting a step that waits at its approval gate: from a notification offered as the
// gate opens (again after the server restarted), or from the step in the Runs view.
import * as vscode from 'vscode';
import { gateQuestion, waitingGates, type WaitingGate } from './approvals';
import type { CommandContext } from './commands';
import type { Run } from './protocol';
import { ensureTrusted } from './runCommands';
import type { RunsNode } from './runsView';

const APPROVE = 'Approve';
const REJECT = 'Reject';

/** Offers each waiting gate once, as a notification with Approve and Reject. */
export class ApprovalOffers {
  private readonly offered = new Set<string>();

  constructor(private readonly ctx: CommandContext) {}

  offer(run: Run): void {
    for (const gate of waitingGates(run)) {
      if (!this.offered.has(gate.key)) {
        this.offered.add(gate.key);
        void this.ask(gate);
      }
    }
  }

  private async ask(gate: WaitingGate): Promise<void> {
    const choice = await vscode.window.showInformationMessage(gateQuestion(gate), APPROVE, REJECT);
    if (!choice) {
      return;
    }
    try {
      await decideGate(this.ctx, gate.runId, gate.stepId, choice === APPROVE);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.ctx.channel.error(`Deciding ${gate.stepId} of run ${gate.runId}: ${message}`);
      void vscode.window.showErrorMessage(`Treeflow: ${message}`);
    }
  }
}

/** The Runs view's Approve / Reject on a step, or from the palette, on a gate picked from those waiting. */
export async function decideFromView(ctx: CommandContext, approve: boolean, node?: RunsNode): Promise<void> {
  let target = node?.kind === 'step' ? { runId: node.runId, stepId: node.stepId } : undefined;
  if (!target) {
    await ctx.refresh();
    const gates = ctx.store.list().flatMap(waitingGates);
    if (!gates.length) {
      void vscode.window.showInformationMessage('Treeflow: no step is waiting for approval.');
      return;
    }
    const picked = await vscode.window.showQuickPick(
      gates.map((gate) => ({ label: gate.stepId, description: `${gate.workflow} · ${gate.message}`, gate })),
      { title: approve ? 'Treeflow: Approve' : 'Treeflow: Reject', placeHolder: 'Step waiting for approval' },
    );
    if (!picked) {
      return;
    }
    target = { runId: picked.gate.runId, stepId: picked.gate.stepId };
  }
  await decideGate(ctx, target.runId, target.stepId, approve);
}

/** Sends the decision; a rejection first asks why (optional; Escape keeps the gate waiting). */
async function decideGate(ctx: CommandContext, runId: string, stepId: string, approve: boolean): Promise<void> {
  // Approving lets the step's commands run, and deciding a stopped run resumes it.
  if (!(await ensureTrusted('decides approval gates'))) {
    return;
  }
  let message: string | undefined;
  if (!approve) {
    message = await vscode.window.showInputBox({
      title: `Treeflow: Reject ${stepId}`,
      prompt: 'Why? (optional; kept with the decision)',
    });
    if (message === undefined) {
      return;
    }
  }
  const { approval, resumed } = await ctx.server.execute('treeflow.approve', {
    runId,
    stepId,
    approve,
    message: message || null,
  });
  const by = approval.decided_by ? ` by ${approval.decided_by}` : '';
  ctx.channel.info(`Run ${runId}: ${stepId} ${approval.decision ?? 'decided'}${by}${resumed ? '; the run resumes' : ''}`);
}

// Which approval gates the editor offers to decide, and the question it asks for each. Free of the
// `vscode` import so that these rules are unit tested.
import { isResumable, waitsForApproval } from './format';
import type { Run } from './protocol';

export interface WaitingGate {
  runId: string;
  stepId: string;
  workflow: string;
  message: string;
  /** A process waits at the gate; else its run stopped there, and a decision resumes it. */
  live: boolean;
  /** The same gate, in the same state, is offered once. */
  key: string;
}

/**
 * The gates of `run` waiting for a decision: in a running run, and in a run that stopped while one
 * waited (its language server restarted, its process died), whose resume asks them again.
 */
export function waitingGates(run: Run): WaitingGate[] {
  const live = run.status === 'running';
  if (!live && !isResumable(run)) {
    return [];
  }
  const gates: WaitingGate[] = [];
  for (const [stepId, step] of Object.entries(run.steps)) {
    if (step.approval && waitsForApproval(step)) {
      gates.push({
        runId: run.run_id,
        stepId,
        workflow: run.workflow,
        message: step.approval.message,
        live,
        key: [run.run_id, run.started_at, stepId, step.approval.requested_at, live ? 'live' : 'stopped'].join('|'),
      });
    }
  }
  return gates;
}

/** `checks · deploy: Deploy to staging?`, and for a stopped run, that a decision resumes it. */
export function gateQuestion(gate: WaitingGate): string {
  const where = `${gate.workflow} · ${gate.stepId}`;
  if (gate.live) {
    return `Treeflow: ${where}: ${gate.message}`;
  }
  return `Treeflow: ${where} was waiting for approval when its run stopped: ${gate.message} (deciding resumes the run)`;
}

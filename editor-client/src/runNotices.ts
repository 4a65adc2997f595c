// What the editor says of runs as they start and fail: a line in the output channel for each run
// it started, and a notification for each run that failed.
import * as vscode from 'vscode';
import type { ServerClient } from './client';
import { failureNotice } from './failureNotice';
import type { Run } from './protocol';
import type { RunsNode } from './runsView';

/** The line every run started from the editor leaves in the output channel. */
export function logStarted(channel: vscode.LogOutputChannel, runId: string, workflow: string, steps: readonly string[]): void {
  channel.info(`Started run ${runId} of ${workflow}${steps.length ? ` (steps: ${steps.join(', ')})` : ''}`);
}

/** `logStarted` for a run started through the server's own command, which names only the file. */
export async function logServerStarted(
  server: ServerClient,
  channel: vscode.LogOutputChannel,
  run: { runId: string; workflow: string; steps: readonly string[] },
): Promise<void> {
  const known = await server.execute('treeflow.listWorkflows').catch(() => []);
  const name = known.find((info) => info.uri === run.workflow)?.name ?? run.workflow;
  logStarted(channel, run.runId, name, run.steps);
}

/** A run that just failed says so once, offering the log of its failed step. */
export function offerFailedLog(run: Run, before: Run | undefined): void {
  const notice = failureNotice(run, before);
  if (!notice) {
    return;
  }
  const { logStep } = notice;
  const actions = logStep ? ['Show Log'] : [];
  void vscode.window.showErrorMessage(`Treeflow: ${notice.message}`, ...actions).then(async (choice) => {
    if (choice && logStep) {
      const node: RunsNode = { kind: 'step', runId: run.run_id, stepId: logStep };
      await vscode.commands.executeCommand('treeflow.openStepLog', node);
    }
  });
}

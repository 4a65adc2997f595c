// Entry point: wires the output channel, the language client, the run store and the UI together.
import * as vscode from 'vscode';
import { ApprovalOffers } from './approvalCommands';
import { ChangeStats } from './changeStats';
import { ServerClient } from './client';
import { registerCommands } from './commands';
import { isFailure } from './format';
import { registerInterpreterCommands } from './interpreterCommands';
import { isFinal, type Run } from './protocol';
import { onDidChangeInterpreter } from './python';
import { channelLines } from './outputText';
import { offerReview, registerRevisionContent } from './reviewCommands';
import { logServerStarted, offerFailedLog } from './runNotices';
import { RunStore } from './runStore';
import { RunsView } from './runsView';
import { affectsServer, configuredPython } from './settings';
import { StatusBar } from './statusBar';
import { StepLogDocuments } from './stepLogs';
import { runSummary } from './statusText';
import { TranscriptDocuments } from './transcripts';
import { WorkflowSteps } from './workflowSteps';

let server: ServerClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  // First, so that everything after it can log.
  const channel = vscode.window.createOutputChannel('Treeflow', { log: true });
  const store = new RunStore();
  const logs = new StepLogDocuments();
  // The language server and its dependencies travel in the .vsix (scripts/bundle-server).
  const entryScript = context.asAbsolutePath('editor-client/bundled/tool/treeflow_server.py');
  const client = new ServerClient(channel, {
    started: () => void refresh(),
    runUpdated: ({ run }) => {
      const before = store.update(run);
      if (!before) {
        // A new run, perhaps of a workflow changed or added since: how many steps has it now?
        void workflows.reload().catch((error) => channel.warn(`Could not list workflows: ${String(error)}`));
      }
      logOutcome(channel, run, before);
      offerFailedLog(run, before);
      for (const stepId of Object.keys(run.steps)) {
        logs.stepChanged(run.run_id, stepId);
      }
      void offerReview(ctx, run, before).catch((error) => channel.warn(`Offering the review: ${String(error)}`));
      approvals.offer(run);
    },
    runStarted: ({ workflow, steps }, { runId }) =>
      void logServerStarted(client, channel, { runId, workflow, steps: steps ?? [] }),
    log: ({ runId, stepId, text, stream }) => {
      // One call per line: the channel stamps each call, not each line.
      for (const line of channelLines(stepId, text, stream)) {
        channel.info(line);
      }
      logs.stepChanged(runId, stepId);
    },
  }, entryScript);
  server = client;
  const stats = new ChangeStats((runId) => client.execute('treeflow.diff', { runId }));
  const workflows = new WorkflowSteps(() => client.execute('treeflow.listWorkflows'));
  const ctx = { server: client, store, stats, channel, logs, refresh };
  const approvals = new ApprovalOffers(ctx);

  async function refresh(): Promise<void> {
    const since = store.mark();
    try {
      store.replace(await client.execute('treeflow.listRuns'), since);
      void workflows.reload().catch((error) => channel.warn(`Could not list workflows: ${String(error)}`));
      // After a restart of the server, a run stopped at a gate is offered again.
      for (const run of store.list()) {
        approvals.offer(run);
      }
    } catch (error) {
      channel.warn(`Could not list runs: ${String(error)}`);
    }
  }

  context.subscriptions.push(
    channel,
    client,
    logs,
    new StatusBar(store),
    new RunsView(store, stats, workflows),
    ...registerCommands(ctx),
    ...registerInterpreterCommands(entryScript),
    registerRevisionContent(ctx),
    new TranscriptDocuments(client, store),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (affectsServer(event)) {
        void client.restart('treeflow.python changed');
      }
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => void client.restart('workspace trusted')),
  );
  // Not awaited: activating the Python extension can take seconds.
  void onDidChangeInterpreter(() => {
    if (!configuredPython()) {
      void client.restart('Python interpreter changed');
    }
  }).then((subscription) => context.subscriptions.push(subscription));
  // Not awaited: activation must not wait for Python to start; commands wait for it instead.
  void client.restart('activation');
}

export async function deactivate(): Promise<void> {
  await server?.stop();
  server = undefined;
}

function logOutcome(channel: vscode.LogOutputChannel, run: Run, before: Run | undefined): void {
  if (isFinal(run.status) && (!before || !isFinal(before.status))) {
    const line = `Run ${run.run_id} of ${run.workflow}: ${runSummary(run)}`;
    if (isFailure(run)) {
      channel.warn(run.error ? `${line}: ${run.error}` : line);
    } else {
      channel.info(line);
    }
  }
}

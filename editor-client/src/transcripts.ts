// "Open Agent Transcript": an agent step's log as the server renders it, in a read-only Markdown
// document under its own scheme, read again while the step runs.
import * as vscode from 'vscode';
import type { ServerClient } from './client';
import type { RunStore } from './runStore';
import { TRANSCRIPT_SCHEME, transcriptKey, transcriptPath, transcriptStep } from './transcriptLink';
import type { StepArgs } from './protocol';

/** At most one re-read per transcript in this time, however often the step reports. */
const REFRESH_INTERVAL_MS = 1000;

export class TranscriptDocuments implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  /** Per open transcript: the key it was last read at, and a pending re-read. */
  private readonly shown = new Map<string, { key: string | undefined; timer?: NodeJS.Timeout | undefined }>();
  private readonly subscriptions: vscode.Disposable[];

  constructor(
    private readonly server: ServerClient,
    private readonly store: RunStore,
  ) {
    this.subscriptions = [
      vscode.workspace.registerTextDocumentContentProvider(TRANSCRIPT_SCHEME, this),
      store.onDidChange(() => this.refreshChanged()),
      vscode.workspace.onDidCloseTextDocument((document) => this.forget(document.uri)),
    ];
  }

  static uri(step: StepArgs): vscode.Uri {
    return vscode.Uri.from({ scheme: TRANSCRIPT_SCHEME, path: transcriptPath(step) });
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const step = transcriptStep(uri.path);
    if (!step) {
      throw new Error(`no agent transcript at ${uri.toString()}`);
    }
    const key = transcriptKey(this.store.get(step.runId), step.stepId);
    const entry = this.shown.get(uri.toString());
    if (entry) {
      entry.key = key;
    } else {
      this.shown.set(uri.toString(), { key });
    }
    const { markdown } = await this.server.execute('treeflow.agentTranscript', step);
    return markdown;
  }

  private refreshChanged(): void {
    for (const [text, entry] of this.shown) {
      const uri = vscode.Uri.parse(text);
      const step = transcriptStep(uri.path);
      if (!step || entry.timer || transcriptKey(this.store.get(step.runId), step.stepId) === entry.key) {
        continue;
      }
      // Read again a moment after the step changed: a busy agent's transcript is read about once a second.
      entry.timer = setTimeout(() => {
        entry.timer = undefined;
        this.changed.fire(uri);
      }, REFRESH_INTERVAL_MS);
    }
  }

  private forget(uri: vscode.Uri): void {
    if (uri.scheme === TRANSCRIPT_SCHEME) {
      clearTimeout(this.shown.get(uri.toString())?.timer);
      this.shown.delete(uri.toString());
    }
  }

  dispose(): void {
    for (const entry of this.shown.values()) {
      clearTimeout(entry.timer);
    }
    this.subscriptions.forEach((subscription) => subscription.dispose());
    this.changed.dispose();
  }
}

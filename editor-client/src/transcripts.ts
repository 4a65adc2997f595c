// "Open Agent Transcript": an agent step's log as the server renders it, in a read-only Markdown
// document under its own scheme, read again while the step runs.
import * as vscode from 'vscode';
import type { ServerClient } from './client';
import type { StepArgs } from './protocol';
import { RefreshedDocuments, type Refreshing } from './refreshedDocuments';
import type { RunStore } from './runStore';
import { TRANSCRIPT_SCHEME, transcriptKey, transcriptPath, transcriptStep } from './transcriptLink';

interface Shown extends Refreshing {
  /** The step's state as of the last read, so that only a change reads it again. */
  key: string | undefined;
}

export class TranscriptDocuments extends RefreshedDocuments<Shown> {
  constructor(
    private readonly server: ServerClient,
    private readonly store: RunStore,
  ) {
    super(TRANSCRIPT_SCHEME);
    this.subscriptions.push(store.onDidChange(() => this.refreshChanged()));
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
      const step = transcriptStep(vscode.Uri.parse(text).path);
      if (step && transcriptKey(this.store.get(step.runId), step.stepId) !== entry.key) {
        this.refreshSoon(text, entry);
      }
    }
  }
}

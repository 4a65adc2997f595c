// Step logs opened in the editor: read-only documents under their own scheme that show the log
// file without terminal escapes and with carriage returns applied (the file keeps the raw bytes),
// read again while the step prints.
import * as vscode from 'vscode';
import { displayLog } from './outputText';
import { RefreshedDocuments, type Refreshing } from './refreshedDocuments';

const STEP_LOG_SCHEME = 'treeflow-log';

interface Shown extends Refreshing {
  runId: string;
  stepId: string;
}

export class StepLogDocuments extends RefreshedDocuments<Shown> {
  constructor() {
    super(STEP_LOG_SCHEME);
  }

  /** Opens the log file at `path` of step `stepId` of run `runId`. */
  async open(runId: string, stepId: string, path: string): Promise<void> {
    const uri = vscode.Uri.file(path).with({ scheme: STEP_LOG_SCHEME });
    if (!this.shown.has(uri.toString())) {
      this.shown.set(uri.toString(), { runId, stepId });
    }
    const document = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(document, { preview: true });
  }

  /** The step printed more, or ended: an open log of it is read again soon. */
  stepChanged(runId: string, stepId: string): void {
    for (const [text, entry] of this.shown) {
      if (entry.runId === runId && entry.stepId === stepId) {
        this.refreshSoon(text, entry);
      }
    }
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const bytes = await vscode.workspace.fs.readFile(uri.with({ scheme: 'file' }));
    return displayLog(new TextDecoder('utf-8').decode(bytes));
  }
}

// Step logs opened in the editor: read-only documents under their own scheme that show the log
// file without terminal escapes and with carriage returns applied (the file keeps the raw bytes),
// read again while the step prints.
import * as vscode from 'vscode';
import { displayLog } from './outputText';

const STEP_LOG_SCHEME = 'treeflow-log';
/** At most one re-read per open log in this time, however much the step prints. */
const REFRESH_INTERVAL_MS = 1000;

interface Shown {
  runId: string;
  stepId: string;
  timer?: NodeJS.Timeout | undefined;
}

export class StepLogDocuments implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  /** Open logs by URI. */
  private readonly shown = new Map<string, Shown>();
  private readonly subscriptions: vscode.Disposable[];

  constructor() {
    this.subscriptions = [
      vscode.workspace.registerTextDocumentContentProvider(STEP_LOG_SCHEME, this),
      vscode.workspace.onDidCloseTextDocument((document) => this.forget(document.uri)),
    ];
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
      if (entry.runId !== runId || entry.stepId !== stepId || entry.timer) {
        continue;
      }
      entry.timer = setTimeout(() => {
        entry.timer = undefined;
        this.changed.fire(vscode.Uri.parse(text));
      }, REFRESH_INTERVAL_MS);
    }
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const bytes = await vscode.workspace.fs.readFile(uri.with({ scheme: 'file' }));
    return displayLog(new TextDecoder('utf-8').decode(bytes));
  }

  private forget(uri: vscode.Uri): void {
    if (uri.scheme === STEP_LOG_SCHEME) {
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

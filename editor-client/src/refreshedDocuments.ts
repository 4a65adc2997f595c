// Read-only documents under a scheme of their own, read again while what they show changes: at most
// once a second each, however often it changes.
import * as vscode from 'vscode';

const REFRESH_INTERVAL_MS = 1000;

/** What every open document keeps: its pending re-read. */
export interface Refreshing {
  timer?: NodeJS.Timeout | undefined;
}

export abstract class RefreshedDocuments<Entry extends Refreshing>
  implements vscode.TextDocumentContentProvider, vscode.Disposable
{
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  /** Open documents by URI. */
  protected readonly shown = new Map<string, Entry>();
  protected readonly subscriptions: vscode.Disposable[];

  constructor(private readonly scheme: string) {
    this.subscriptions = [
      vscode.workspace.registerTextDocumentContentProvider(scheme, this),
      vscode.workspace.onDidCloseTextDocument((document) => this.forget(document.uri)),
    ];
  }

  abstract provideTextDocumentContent(uri: vscode.Uri): Promise<string>;

  /** The document at `text` (a URI as a string) is read again in a moment, unless that is due already. */
  protected refreshSoon(text: string, entry: Entry): void {
    if (entry.timer) {
      return;
    }
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      this.changed.fire(vscode.Uri.parse(text));
    }, REFRESH_INTERVAL_MS);
  }

  private forget(uri: vscode.Uri): void {
    if (uri.scheme === this.scheme) {
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

// One status bar item following the current run (see RunStore.current).
import * as vscode from 'vscode';
import { attention } from './format';
import { hasResult } from './review';
import type { RunStore, Subscription } from './runStore';
import { statusBarText, statusBarTooltip } from './statusText';

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('treeflow.status', vscode.StatusBarAlignment.Left, 50);
  private readonly subscription: Subscription;

  constructor(private readonly store: RunStore) {
    this.item.name = 'Treeflow';
    this.subscription = store.onDidChange(() => this.render());
    this.render();
  }

  private render(): void {
    const run = this.store.current();
    if (!run) {
      this.item.hide();
      return;
    }
    this.item.text = statusBarText(run);
    const tooltip = new vscode.MarkdownString(statusBarTooltip(run), true);
    // What comes after a run that succeeded with changes is their review; after a failure, the view.
    const review = run.status === 'succeeded' && hasResult(run);
    tooltip.appendMarkdown(review ? '\n\n_Click to review its changes._' : '\n\n_Click to show the runs._');
    this.item.command = review
      ? { command: 'treeflow.reviewChanges', title: 'Review Changes', arguments: [{ kind: 'run', runId: run.run_id }] }
      : 'treeflow.showRuns';
    this.item.tooltip = tooltip;
    const level = attention(run);
    this.item.backgroundColor = level ? new vscode.ThemeColor(`statusBarItem.${level}Background`) : undefined;
    this.item.accessibilityInformation = { label: `treeflow ${statusBarText(run).replace(/\$\([^)]*\)\s*/g, '')}` };
    this.item.show();
  }

  dispose(): void {
    this.subscription.dispose();
    this.item.dispose();
  }
}

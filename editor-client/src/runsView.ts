// The "Runs" tree: runs newest first, each with its steps.
import * as vscode from 'vscode';
import type { ChangeStats } from './changeStats';
import type { RunStore, Subscription } from './runStore';
import { runItem, stepItem, type ItemShape } from './treeItems';
import type { WorkflowSteps } from './workflowSteps';

/** What the view's items stand for; commands invoked on an item get this as their argument. */
export type RunsNode = { kind: 'run'; runId: string } | { kind: 'step'; runId: string; stepId: string };

export class RunsView implements vscode.TreeDataProvider<RunsNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<RunsNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly view: vscode.TreeView<RunsNode>;
  private readonly subscriptions: Subscription[];

  constructor(
    private readonly store: RunStore,
    private readonly stats: ChangeStats,
    private readonly workflows: WorkflowSteps,
  ) {
    this.view = vscode.window.createTreeView('treeflow.runs', { treeDataProvider: this, showCollapseAll: true });
    // Adding or dropping a run moves every row, so the whole tree is refreshed; it is small.
    this.subscriptions = [
      store.onDidChange(() => this.changed.fire(undefined)),
      stats.onDidChange(() => this.changed.fire(undefined)),
      workflows.onDidChange(() => this.changed.fire(undefined)),
    ];
  }

  getChildren(node?: RunsNode): RunsNode[] {
    if (!node) {
      return this.store.list().map((run) => ({ kind: 'run', runId: run.run_id }));
    }
    const run = node.kind === 'run' ? this.store.get(node.runId) : undefined;
    return run ? Object.keys(run.steps).map((stepId) => ({ kind: 'step', runId: run.run_id, stepId })) : [];
  }

  getTreeItem(node: RunsNode): vscode.TreeItem {
    const run = this.store.get(node.runId);
    if (!run) {
      return new vscode.TreeItem(node.runId);
    }
    if (node.kind === 'run') {
      const newest = this.store.list()[0]?.run_id === run.run_id;
      return toTreeItem(runItem(run, newest, this.stats.peek(run), this.workflows.get(run.workflow_path)));
    }
    return run.steps[node.stepId] ? toTreeItem(stepItem(run, node.stepId), node) : new vscode.TreeItem(node.stepId);
  }

  getParent(node: RunsNode): RunsNode | undefined {
    return node.kind === 'step' ? { kind: 'run', runId: node.runId } : undefined;
  }

  dispose(): void {
    this.subscriptions.forEach((subscription) => subscription.dispose());
    this.view.dispose();
    this.changed.dispose();
  }
}

function toTreeItem(shape: ItemShape, node?: RunsNode): vscode.TreeItem {
  const state =
    shape.expanded === undefined
      ? vscode.TreeItemCollapsibleState.None
      : shape.expanded
        ? vscode.TreeItemCollapsibleState.Expanded
        : vscode.TreeItemCollapsibleState.Collapsed;
  const item = new vscode.TreeItem(shape.label, state);
  item.id = shape.id;
  item.description = shape.description;
  item.tooltip = shape.tooltip;
  item.contextValue = shape.contextValue;
  item.iconPath = new vscode.ThemeIcon(
    shape.icon.id,
    shape.icon.color ? new vscode.ThemeColor(shape.icon.color) : undefined,
  );
  if (shape.log && node) {
    item.command = { command: 'treeflow.openStepLog', title: 'Open Step Log', arguments: [node] };
  }
  return item;
}

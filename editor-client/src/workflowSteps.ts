// The steps each workflow file has now, from `treeflow.listWorkflows`, so that the runs view can
// say when a run ran only some of them. Free of the `vscode` import so that it is unit tested.
import type { WorkflowInfo } from './protocol';
import type { Subscription } from './runStore';

export class WorkflowSteps {
  /** Step ids by the workflow file's path. */
  private byPath = new Map<string, string[]>();
  private readonly listeners = new Set<() => void>();
  private loading: Promise<void> | undefined;

  constructor(private readonly list: () => Promise<WorkflowInfo[]>) {}

  /** The steps of the workflow at `path` (a run's `workflow_path`), if it is a valid workflow. */
  get(path: string): readonly string[] | undefined {
    return this.byPath.get(path);
  }

  /** Asks the server again; calls made while a request is out share it. */
  reload(): Promise<void> {
    this.loading ??= this.list()
      .then((workflows) => {
        const byPath = new Map(
          workflows.filter((workflow) => !workflow.errors.length).map((workflow) => [filePath(workflow.uri), workflow.steps]),
        );
        // Listeners redraw the whole runs view, which ends a hover on it: only for a real change.
        if (!sameSteps(byPath, this.byPath)) {
          this.byPath = byPath;
          this.listeners.forEach((listener) => listener());
        }
      })
      .finally(() => {
        this.loading = undefined;
      });
    return this.loading;
  }

  onDidChange(listener: () => void): Subscription {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }
}

function sameSteps(a: ReadonlyMap<string, string[]>, b: ReadonlyMap<string, string[]>): boolean {
  return a.size === b.size && [...a].every(([path, steps]) => b.get(path)?.join('\n') === steps.join('\n'));
}

function filePath(uri: string): string {
  try {
    return uri.startsWith('file:') ? decodeURIComponent(new URL(uri).pathname) : uri;
  } catch {
    return uri;
  }
}

// The runs the editor knows of: the server's list, kept current by `treeflow/runUpdated`.
// Free of the `vscode` import so that its ordering and merge rules are unit tested.
import { isResumable } from './format';
import { isFinal, type Run } from './protocol';

interface Entry {
  run: Run;
  /** When this entry last changed, on the store's own clock. */
  seq: number;
}

export interface Subscription {
  dispose(): void;
}

export class RunStore {
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<(changed: Run | undefined) => void>();
  private clock = 0;

  /** `changed` is the run that changed, or undefined when the whole list was replaced. */
  onDidChange(listener: (changed: Run | undefined) => void): Subscription {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /** Takes a newer state of one run; returns the state it had before, if any. */
  update(run: Run): Run | undefined {
    const previous = this.entries.get(run.run_id)?.run;
    this.entries.set(run.run_id, { run, seq: ++this.clock });
    this.emit(run);
    return previous;
  }

  /** A point in time to hand to `replace` once a list requested now has arrived. */
  mark(): number {
    return this.clock;
  }

  /**
   * Replaces every run by the server's list, except runs updated after `since`: the server lists a
   * live run as its updates last said, so a notification that came after the list was asked for is
   * as new as the list or newer. Those runs stay the latest to have changed, in the order they did.
   */
  replace(runs: readonly Run[], since: number): void {
    const keep = [...this.entries.values()].filter((entry) => entry.seq > since).sort((a, b) => a.seq - b.seq);
    this.entries.clear();
    // The list is newest first; the newest gets the latest time, so that `current` picks it.
    for (const run of [...runs].reverse()) {
      this.entries.set(run.run_id, { run, seq: ++this.clock });
    }
    for (const { run } of keep) {
      this.entries.delete(run.run_id);
      this.entries.set(run.run_id, { run, seq: ++this.clock });
    }
    this.emit(undefined);
  }

  get(runId: string): Run | undefined {
    return this.entries.get(runId)?.run;
  }

  /** Newest first. */
  list(): Run[] {
    return [...this.entries.values()].map((entry) => entry.run).sort(newestFirst);
  }

  running(): Run[] {
    return this.list().filter((run) => !isFinal(run.status));
  }

  /** Newest first. */
  resumable(): Run[] {
    return this.list().filter(isResumable);
  }

  /** The run the status bar follows: the newest still running, else the last one to change. */
  current(): Run | undefined {
    const running = this.running();
    if (running.length) {
      return running[0];
    }
    let last: Entry | undefined;
    for (const entry of this.entries.values()) {
      if (!last || entry.seq > last.seq) {
        last = entry;
      }
    }
    return last?.run;
  }

  private emit(changed: Run | undefined): void {
    for (const listener of [...this.listeners]) {
      listener(changed);
    }
  }
}

function newestFirst(a: Run, b: Run): number {
  // ISO 8601 times in UTC sort as text; a run not yet started counts as the newest.
  return compare(b.started_at ?? '~', a.started_at ?? '~') || compare(b.run_id, a.run_id);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

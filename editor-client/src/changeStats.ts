// The change stat of each finished run's result (`+120 −14 in 7 files`), asked of the server with
// `treeflow.diff` once per run and result, one request at a time, so that `treeflow/runUpdated`
// stays light. Free of the `vscode` import so that it is unit tested.
import type { DiffResult, Run } from './protocol';
import { changeStat, hasResult } from './review';
import type { Subscription } from './runStore';

export class ChangeStats {
  /** By run and result; null when the server had none to give (a discarded run, say). */
  private readonly known = new Map<string, string | null>();
  private readonly asked = new Map<string, Promise<string | null>>();
  private readonly listeners = new Set<(runId: string) => void>();
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly fetchDiff: (runId: string) => Promise<DiffResult>) {}

  /** The stat if known; the first call for a run asks for it, and listeners hear when it comes. */
  peek(run: Run): string | undefined {
    if (!hasResult(run)) {
      return undefined;
    }
    const key = keyOf(run);
    if (!this.known.has(key)) {
      void this.load(run);
      return undefined;
    }
    return this.known.get(key) ?? undefined;
  }

  /** The stat of a run's result, asked for if not known; undefined for a run without one. */
  async load(run: Run): Promise<string | undefined> {
    if (!hasResult(run)) {
      return undefined;
    }
    const key = keyOf(run);
    let pending = this.asked.get(key);
    if (!pending) {
      pending = this.tail.then(() => this.fetch(run, key));
      this.asked.set(key, pending);
      this.tail = pending;
    }
    return (await pending) ?? undefined;
  }

  /** Forgets what is known of a run whose branches changed (discarded, say). */
  forget(runId: string): void {
    for (const key of [...this.known.keys(), ...this.asked.keys()]) {
      if (key.startsWith(`${runId} `)) {
        this.known.delete(key);
        this.asked.delete(key);
      }
    }
    this.emit(runId);
  }

  onDidChange(listener: (runId: string) => void): Subscription {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  private async fetch(run: Run, key: string): Promise<string | null> {
    let text: string | null;
    try {
      text = changeStat(await this.fetchDiff(run.run_id));
    } catch {
      text = null;
    }
    this.known.set(key, text);
    this.emit(run.run_id);
    return text;
  }

  private emit(runId: string): void {
    for (const listener of [...this.listeners]) {
      listener(runId);
    }
  }
}

/** A resumed run ends again, with a new end time and perhaps a new result. */
function keyOf(run: Run): string {
  return `${run.run_id} ${run.ended_at ?? ''} ${run.result_branch ?? ''}`;
}

// What the review actions show and send, as plain data: the multi-file diff's entries, the change
// stat, and the words of their notifications. Free of the `vscode` import so that it is unit tested.
import { isFinal, type ApplyResult, type DiffResult, type DiscardResult, type FileContent, type Run } from './protocol';

/** The scheme of a file's contents at a commit, read through `treeflow.readFile`. */
export const REVISION_SCHEME = 'treeflow-rev';

/** What a review action works on: a run's result, or one step's work. */
export interface WorkTarget {
  runId: string;
  steps: string[];
}

/** A file at a revision: an absolute path and a full commit id. */
export interface Revision {
  path: string;
  rev: string;
}

/** One row of `vscode.changes`: the file in the checkout, and its two sides (none where it does not exist). */
export interface ChangeEntry {
  resource: string;
  original: Revision | undefined;
  modified: Revision | undefined;
}

export function changeEntries(diff: DiffResult): ChangeEntry[] {
  const at = (path: string): string => joinPath(diff.root, path);
  return diff.files.map((file) => ({
    resource: at(file.path),
    original: file.status === 'added' ? undefined : { path: at(file.oldPath ?? file.path), rev: diff.base },
    modified: file.status === 'deleted' ? undefined : { path: at(file.path), rev: diff.commit },
  }));
}

function joinPath(root: string, relative: string): string {
  return `${root.replace(/\/+$/, '')}/${relative}`;
}

/** `+120 −14 in 7 files`, or `no changes`. */
export function changeStat(diff: Pick<DiffResult, 'additions' | 'deletions' | 'files'>): string {
  const count = diff.files.length;
  if (!count) {
    return 'no changes';
  }
  return `+${diff.additions} −${diff.deletions} in ${count} file${count === 1 ? '' : 's'}`;
}

/** The title of the multi-file diff editor: `checks: run 20261128-093012-4f2a`, `checks: step lint`. */
export function reviewTitle(target: WorkTarget, run: Run | undefined): string {
  const what = target.steps.length
    ? `step${target.steps.length > 1 ? 's' : ''} ${target.steps.join(', ')}`
    : `run ${target.runId}`;
  return run ? `${run.workflow}: ${what}` : what;
}

/** What the diff editor shows for a side it cannot show as text. */
export function contentText(content: FileContent): string {
  if (content.text !== null) {
    return content.text;
  }
  if (!content.exists) {
    return '';
  }
  return content.binary
    ? `(a binary file of ${content.size} bytes)`
    : `(a file of ${content.size} bytes: too large to show here)`;
}

/** A finished run whose result can be reviewed and applied. */
export function hasResult(run: Run): boolean {
  return isFinal(run.status) && !run.error && Boolean(run.result_branch);
}

/** Runs whose result a notification offers to review: those that just succeeded with work. */
export function offersReview(run: Run, before: Run | undefined): boolean {
  const justEnded = !before || !isFinal(before.status);
  return justEnded && run.status === 'succeeded' && !run.error && Boolean(run.result_branch);
}

const PLACES: Record<ApplyResult['mode'], string> = {
  'working-tree': 'your working tree',
  squash: 'a commit on your current branch',
  merge: 'a merge commit on your current branch',
};

/** Conflicting files, each with the steps that changed it: `a.txt (changed by edit)`. */
export function conflictList(result: ApplyResult): string {
  return result.conflicts
    .map((conflict) => (conflict.steps.length ? `${conflict.path} (changed by ${conflict.steps.join(' and ')})` : conflict.path))
    .join(', ');
}

/** What to tell the user after an apply, and how loudly. */
export function applyMessage(result: ApplyResult): { level: 'info' | 'warning'; text: string } {
  switch (result.outcome) {
    case 'already_applied':
      return { level: 'info', text: `${result.work} is already applied: your checkout holds all of its work.` };
    case 'conflicts':
      return {
        level: 'warning',
        text: `${result.work} conflicts with ${result.conflictsWith} in ${conflictList(result)}. Nothing was changed.`,
      };
    default: {
      const count = result.files.length;
      const text = `Applied ${result.work} to ${PLACES[result.mode] ?? result.mode}: ${count} file${count === 1 ? '' : 's'} changed.`;
      return result.conflicts.length
        ? { level: 'warning', text: `${text} Conflict markers were written in ${conflictList(result)}; resolve them.` }
        : { level: 'info', text };
    }
  }
}

/** The modal's detail before a discard: each branch, with the commits that would be lost. */
export function discardDetail(plan: DiscardResult): string {
  const lines: string[] = [];
  for (const branch of plan.branches) {
    const note = branch.checkedOut ? ' (checked out: kept)' : '';
    if (branch.uniqueCommits.length) {
      const count = branch.uniqueCommits.length;
      lines.push(`${branch.name}${note}: ${count} commit${count === 1 ? '' : 's'} found nowhere else`);
      lines.push(...branch.uniqueCommits.slice(0, 5).map((commit) => `    ${commit}`));
      if (count > 5) {
        lines.push(`    … and ${count - 5} more`);
      }
    } else {
      lines.push(`${branch.name}${note}: its commits are on other branches`);
    }
  }
  return lines.join('\n');
}

/** Branch name to the tip the user saw, for `treeflow.discard`'s `confirmed`. */
export function confirmedTips(plan: DiscardResult): Record<string, string> {
  return Object.fromEntries(plan.branches.filter((branch) => !branch.checkedOut).map((branch) => [branch.name, branch.tip]));
}

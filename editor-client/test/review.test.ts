import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ApplyResult, DiffResult, DiscardResult } from '../src/protocol';
import {
  applyMessage,
  changeEntries,
  changeStat,
  confirmedTips,
  contentText,
  discardDetail,
  hasResult,
  offersReview,
  reviewTitle,
} from '../src/review';
import { run, step } from './fixtures';

function diff(overrides: Partial<DiffResult> = {}): DiffResult {
  return {
    runId: 'r1',
    steps: [],
    root: '/home/me/project/',
    base: 'b'.repeat(40),
    commit: 'c'.repeat(40),
    additions: 120,
    deletions: 14,
    files: [
      { path: 'a.txt', oldPath: null, status: 'modified', additions: 100, deletions: 4, binary: false },
      { path: 'dir/new.txt', oldPath: null, status: 'added', additions: 20, deletions: 0, binary: false },
      { path: 'gone.txt', oldPath: null, status: 'deleted', additions: 0, deletions: 10, binary: false },
      { path: 'lib/moved.py', oldPath: 'moved.py', status: 'renamed', additions: 0, deletions: 0, binary: false },
    ],
    ...overrides,
  };
}

function applied(overrides: Partial<ApplyResult> = {}): ApplyResult {
  return {
    outcome: 'applied',
    mode: 'working-tree',
    work: 'run r1',
    files: ['a.txt', 'b.txt'],
    conflicts: [],
    conflictsWith: '',
    backup: 'refs/treeflow/backups/20261128-093012-000000',
    commit: null,
    ...overrides,
  };
}

test('each changed file is one row of the multi-file diff: the checkout file and its two sides', () => {
  const [modified, added, deleted, renamed] = changeEntries(diff());
  const base = 'b'.repeat(40);
  const commit = 'c'.repeat(40);
  assert.deepEqual(modified, {
    resource: '/home/me/project/a.txt',
    original: { path: '/home/me/project/a.txt', rev: base },
    modified: { path: '/home/me/project/a.txt', rev: commit },
  });
  assert.deepEqual(added, { resource: '/home/me/project/dir/new.txt', original: undefined, modified: { path: '/home/me/project/dir/new.txt', rev: commit } });
  assert.deepEqual(deleted, { resource: '/home/me/project/gone.txt', original: { path: '/home/me/project/gone.txt', rev: base }, modified: undefined });
  assert.equal(renamed?.original?.path, '/home/me/project/moved.py', 'a renamed file is compared with its old path');
  assert.equal(renamed?.modified?.path, '/home/me/project/lib/moved.py');
});

test('the change stat counts lines and files, with a real minus sign', () => {
  assert.equal(changeStat(diff()), '+120 −14 in 4 files');
  assert.equal(changeStat(diff({ additions: 1, deletions: 0, files: diff().files.slice(0, 1) })), '+1 −0 in 1 file');
  assert.equal(changeStat(diff({ files: [] })), 'no changes');
});

test('the review title names the workflow and the run or the steps', () => {
  assert.equal(reviewTitle({ runId: 'r1', steps: [] }, run({ workflow: 'checks' })), 'checks: run r1');
  assert.equal(reviewTitle({ runId: 'r1', steps: ['lint'] }, run()), 'checks: step lint');
  assert.equal(reviewTitle({ runId: 'r1', steps: ['a', 'b'] }, undefined), 'steps a, b');
});

test('a side the diff editor cannot show as text says why', () => {
  assert.equal(contentText({ exists: true, binary: false, size: 4, text: 'abc\n' }), 'abc\n');
  assert.equal(contentText({ exists: false, binary: false, size: 0, text: null }), '');
  assert.equal(contentText({ exists: true, binary: true, size: 3, text: null }), '(a binary file of 3 bytes)');
  assert.match(contentText({ exists: true, binary: false, size: 9e6, text: null }), /too large/);
});

test('only a run that has just succeeded with a result is offered for review', () => {
  const done = run({ status: 'succeeded', result_branch: 'treeflow/runs/r1', steps: { a: step({ status: 'succeeded' }) } });
  const going = run({ status: 'running', steps: { a: step({ status: 'running' }) } });
  assert.equal(offersReview(done, going), true);
  assert.equal(offersReview(done, undefined), true);
  assert.equal(offersReview(done, done), false, 'not again on a later update');
  assert.equal(offersReview(run({ status: 'succeeded' }), going), false, 'no result, nothing to review');
  assert.equal(offersReview({ ...done, status: 'failed' }, going), false);
  assert.equal(hasResult({ ...done, status: 'failed' }), true, 'a failed run with a result can still be reviewed');
  assert.equal(hasResult({ ...done, error: 'could not start' }), false);
  assert.equal(hasResult(going), false);
});

test('an apply is reported with where the work went, conflicts by file and step', () => {
  assert.deepEqual(applyMessage(applied()), { level: 'info', text: 'Applied run r1 to your working tree: 2 files changed.' });
  assert.match(applyMessage(applied({ mode: 'squash', files: ['a'] })).text, /to a commit on your current branch: 1 file changed\.$/);
  assert.deepEqual(applyMessage(applied({ outcome: 'already_applied', files: [] })).level, 'info');
  const conflicts = [{ path: 'a.txt', steps: ['edit'] }, { path: 'b.txt', steps: ['x', 'y'] }, { path: 'c.txt', steps: [] }];
  assert.deepEqual(applyMessage(applied({ outcome: 'conflicts', files: [], conflicts, conflictsWith: 'your working tree' })), {
    level: 'warning',
    text: 'run r1 conflicts with your working tree in a.txt (changed by edit), b.txt (changed by x and y), c.txt. Nothing was changed.',
  });
  const marked = applyMessage(applied({ conflicts: conflicts.slice(0, 1) }));
  assert.equal(marked.level, 'warning');
  assert.match(marked.text, /Conflict markers were written in a\.txt \(changed by edit\); resolve them\.$/);
});

test('the discard modal lists the commits found nowhere else; only branches not checked out are confirmed', () => {
  const plan: DiscardResult = {
    runId: 'r1',
    branches: [
      { name: 'treeflow/r1/a', tip: '1111', uniqueCommits: ['abc1234 treeflow: work of a'], checkedOut: false },
      { name: 'treeflow/r1/b', tip: '2222', uniqueCommits: [], checkedOut: false },
      { name: 'treeflow/runs/r1', tip: '3333', uniqueCommits: Array.from({ length: 7 }, (_, n) => `c${n} s${n}`), checkedOut: true },
    ],
    discarded: false,
    deleted: [],
    kept: [],
  };
  assert.deepEqual(discardDetail(plan).split('\n'), [
    'treeflow/r1/a: 1 commit found nowhere else',
    '    abc1234 treeflow: work of a',
    'treeflow/r1/b: its commits are on other branches',
    'treeflow/runs/r1 (checked out: kept): 7 commits found nowhere else',
    '    c0 s0',
    '    c1 s1',
    '    c2 s2',
    '    c3 s3',
    '    c4 s4',
    '    … and 2 more',
  ]);
  assert.deepEqual(confirmedTips(plan), { 'treeflow/r1/a': '1111', 'treeflow/r1/b': '2222' });
});

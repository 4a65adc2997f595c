import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChangeStats } from '../src/changeStats';
import type { DiffResult } from '../src/protocol';
import { run } from './fixtures';

function diffOf(files: number): DiffResult {
  const file = { path: 'a', oldPath: null, status: 'modified' as const, additions: 2, deletions: 1, binary: false };
  return { runId: 'r', steps: [], root: '/p', base: 'b', commit: 'c', additions: 2 * files, deletions: files, files: Array(files).fill(file) };
}

const finished = run({ run_id: 'r1', status: 'succeeded', result_branch: 'treeflow/runs/r1', ended_at: '2026-11-28T09:31:00+00:00' });

test('a finished run with a result is asked for once, one request at a time, and listeners hear of it', async () => {
  const asked: string[] = [];
  let inFlight = 0;
  let most = 0;
  const stats = new ChangeStats(async (runId) => {
    asked.push(runId);
    inFlight += 1;
    most = Math.max(most, inFlight);
    await new Promise((resolve) => setTimeout(resolve, 5));
    inFlight -= 1;
    return diffOf(runId === 'r1' ? 7 : 1);
  });
  const heard: string[] = [];
  stats.onDidChange((runId) => heard.push(runId));
  const other = { ...finished, run_id: 'r2', result_branch: 'treeflow/runs/r2' };

  assert.equal(stats.peek(finished), undefined, 'not known yet');
  assert.equal(stats.peek(finished), undefined);
  assert.equal(stats.peek(other), undefined);
  assert.equal(await stats.load(finished), '+14 −7 in 7 files');
  assert.equal(await stats.load(other), '+2 −1 in 1 file');
  assert.deepEqual(asked, ['r1', 'r2']);
  assert.equal(most, 1);
  assert.deepEqual(heard, ['r1', 'r2']);
  assert.equal(stats.peek(finished), '+14 −7 in 7 files');

  // A resumed run ends again: its new result is asked for.
  assert.equal(await stats.load({ ...finished, ended_at: '2026-11-28T10:00:00+00:00' }), '+14 −7 in 7 files');
  assert.deepEqual(asked, ['r1', 'r2', 'r1']);
});

test('runs without a result are never asked for; a refusal is remembered as no stat', async () => {
  const asked: string[] = [];
  const stats = new ChangeStats(async (runId) => {
    asked.push(runId);
    throw new Error('run r1 was discarded');
  });
  assert.equal(stats.peek(run({ status: 'running', result_branch: 'treeflow/runs/x' })), undefined);
  assert.equal(stats.peek(run({ status: 'succeeded' })), undefined);
  assert.equal(await stats.load(run({ status: 'failed', error: 'could not start' })), undefined);
  assert.deepEqual(asked, []);
  assert.equal(await stats.load(finished), undefined);
  assert.equal(stats.peek(finished), undefined);
  assert.deepEqual(asked, ['r1'], 'not asked again');
  stats.forget('r1');
  assert.equal(await stats.load(finished), undefined);
  assert.deepEqual(asked, ['r1', 'r1'], 'asked again once forgotten');
});

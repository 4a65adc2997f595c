import assert from 'node:assert/strict';
import { test } from 'node:test';
import { failureNotice } from '../src/failureNotice';
import { run, step } from './fixtures';

test('a run that just failed names its failed step and offers that step log', () => {
  const failed = run({
    status: 'failed',
    steps: {
      fine: step({ status: 'succeeded', log: '/logs/fine.log' }),
      oops: step({ status: 'failed', error: 'exit status 3', log: '/logs/oops.log' }),
    },
  });
  assert.deepEqual(failureNotice(failed, run({ status: 'running' })), {
    message: 'checks failed: oops (exit status 3)',
    logStep: 'oops',
  });
  assert.equal(failureNotice(failed, failed), undefined, 'said once');
});

test('a failed step that printed nothing has no log to offer', () => {
  const failed = run({ status: 'failed', steps: { a: step({ status: 'timed_out' }), b: step({ status: 'failed', log: '/b.log' }) } });
  assert.deepEqual(failureNotice(failed, undefined), { message: 'checks failed: a, b', logStep: 'b' });
  const silent = run({ status: 'failed', steps: { a: step({ status: 'failed', error: 'exit status 1' }) } });
  assert.deepEqual(failureNotice(silent, undefined), { message: 'checks failed: a (exit status 1)' });
});

test('a run that could not start says why; other runs get no notice', () => {
  assert.deepEqual(failureNotice(run({ status: 'failed', error: 'not a git repository' }), undefined), {
    message: 'checks could not start: not a git repository',
  });
  for (const status of ['running', 'succeeded', 'cancelled', 'interrupted'] as const) {
    assert.equal(failureNotice(run({ status }), undefined), undefined, status);
  }
});

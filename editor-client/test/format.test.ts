import assert from 'node:assert/strict';
import { test } from 'node:test';
import { attention, formatDuration, isFailure, isResumable, runIcon, stepDescription, stepIcon } from '../src/format';
import type { RunStatus, StepStatus } from '../src/protocol';
import { run, step } from './fixtures';

test('durations read like 0.4s, 12.3s, 2m 05s, 1h 02m', () => {
  assert.equal(formatDuration(0.4), '0.4s');
  assert.equal(formatDuration(12.34), '12.3s');
  assert.equal(formatDuration(59.96), '1m 00s');
  assert.equal(formatDuration(125), '2m 05s');
  assert.equal(formatDuration(3725), '1h 02m');
  assert.equal(formatDuration(null), '');
});

test('a step is described by its state, then progress or duration, then its words', () => {
  assert.equal(stepDescription(step()), 'pending');
  assert.equal(stepDescription(step({ status: 'running' })), 'running');
  assert.equal(stepDescription(step({ status: 'running', progress: 0.425, message: 'tests pass' })), 'running · 43% · tests pass');
  assert.equal(stepDescription(step({ status: 'succeeded', duration_s: 1.2 })), 'succeeded · 1.2s');
  assert.equal(
    stepDescription(step({ status: 'failed', duration_s: 0.3, error: 'exit status 1' })),
    'failed · 0.3s · exit status 1',
  );
  assert.equal(stepDescription(step({ status: 'timed_out', duration_s: 20, error: 'timed out after 20s' })), 'timed out · 20.0s · timed out after 20s');
  assert.equal(stepDescription(step({ status: 'skipped', error: 'needs `lint`, which failed' })), 'skipped');
});

test('a cached step says where its work came from, with a passed icon', () => {
  const cached = step({ status: 'cached', duration_s: 0.04, cached_from: '20260101-093000-ab12/build' });
  assert.equal(stepDescription(cached), 'cached · 0.0s · from 20260101-093000-ab12/build');
  assert.equal(stepIcon('cached').color, 'testing.iconPassed');
});

test('a step with a fix loop says which round it is in, and that its fixer runs', () => {
  const round = (overrides: object) => ({
    round: 1, of: 3, status: 'failed' as const, exit_code: 1, error: null, fixer: 'fix', fix_status: null,
    fix_error: null, branch: null, commit: null, started_at: null, ended_at: null, ...overrides,
  });
  assert.equal(
    stepDescription(step({ status: 'running', rounds: [round({ fix_status: 'running' })] })),
    'running · round 1 of 3 · fixing',
  );
  assert.equal(
    stepDescription(step({ status: 'succeeded', duration_s: 2, rounds: [round({}), round({ round: 2, status: 'succeeded' })] })),
    'succeeded · round 2 of 3 · 2.0s',
  );
});

test('updates sent while a run goes on carry no `error`; that is no failure', () => {
  const update = run({ steps: { a: step({ status: 'running' }) } });
  delete update.error;
  assert.equal(isFailure(update), false);
  assert.equal(runIcon(update).id, 'sync~spin');
  assert.equal(isFailure({ ...update, error: null, status: 'failed' }), true);
  assert.equal(isFailure({ ...update, error: 'no commits yet' }), true);
});

test('an interrupted run and its steps get an icon of their own and a warning, not an error', () => {
  const interrupted = run({ status: 'interrupted', steps: { a: step({ status: 'interrupted', duration_s: 2 }) } });
  assert.deepEqual(runIcon(interrupted), { id: 'debug-disconnect', color: 'list.warningForeground' });
  assert.deepEqual(stepIcon('interrupted'), { id: 'debug-disconnect', color: 'list.warningForeground' });
  assert.equal(stepDescription(step({ status: 'interrupted', duration_s: 2 })), 'interrupted · 2.0s');
  assert.equal(isFailure(interrupted), false);
  assert.equal(attention(interrupted), 'warning');
  assert.equal(attention({ ...interrupted, error: 'no commits yet' }), 'error');
  assert.equal(attention(run()), undefined);
});

test('a status this client does not know never makes an icon lookup throw', () => {
  for (const status of ['paused', 'toString', 'constructor', '__proto__']) {
    assert.deepEqual(runIcon(run({ status: status as RunStatus })), { id: 'question' });
    assert.deepEqual(stepIcon(status as StepStatus), { id: 'question' });
  }
});

test('a run that ended without succeeding can be resumed, unless it never started', () => {
  const resumable = (['running', 'succeeded', 'failed', 'cancelled', 'interrupted'] as RunStatus[]).filter((status) =>
    isResumable(run({ status })),
  );
  assert.deepEqual(resumable, ['failed', 'cancelled', 'interrupted']);
  assert.equal(isResumable(run({ status: 'failed', error: 'the repository has no commit yet' })), false);
  assert.equal(isResumable(run({ status: 'paused' as RunStatus })), false);
});

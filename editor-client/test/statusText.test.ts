import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RunStatus, StepStatus } from '../src/protocol';
import { runSummary, statusBarText, statusBarTooltip } from '../src/statusText';
import { run, step } from './fixtures';

const sixSteps = (done: number) =>
  Object.fromEntries(
    ['a', 'b', 'c', 'd', 'e', 'f'].map((id, i) => [
      id,
      step({ status: i < done ? 'succeeded' : i === done ? 'running' : 'pending' }),
    ]),
  );

test('a running run shows a spinner and steps done out of all', () => {
  assert.equal(statusBarText(run({ steps: sixSteps(3) })), '$(sync~spin) checks 3/6');
});

test('a run that succeeded shows a check and its duration', () => {
  const done = run({ status: 'succeeded', duration_s: 12.345, steps: { a: step({ status: 'succeeded' }) } });
  assert.equal(statusBarText(done), '$(check) checks 12.3s');
});

test('a failed run names the steps that failed or timed out, in file order', () => {
  const failed = run({
    status: 'failed',
    steps: {
      lint: step({ status: 'cancelled' }),
      unit: step({ status: 'failed', error: 'exit status 1' }),
      e2e: step({ status: 'timed_out' }),
      build: step({ status: 'skipped' }),
    },
  });
  assert.equal(statusBarText(failed), '$(error) checks: unit, e2e');
});

test('a cancelled run says cancelled', () => {
  assert.equal(statusBarText(run({ status: 'cancelled' })), '$(circle-slash) checks cancelled');
});

test('a run that could not start says so, whatever its status', () => {
  const refused = run({ status: 'failed', error: 'the repository has no commits' });
  assert.equal(statusBarText(refused), '$(error) checks: could not start');
  assert.match(statusBarTooltip(refused), /the repository has no commits/);
});

test('the tooltip lists every step with its state and icon', () => {
  const tooltip = statusBarTooltip(
    run({
      steps: {
        lint: step({ status: 'succeeded', duration_s: 1.2 }),
        review: step({ status: 'running', progress: 0.4, message: 'reading' }),
        build: step({ status: 'pending' }),
      },
    }),
  );
  const lines = tooltip.split('\n');
  assert.match(lines[0] ?? '', /checks.*running 1\/3/);
  assert.ok(lines.includes('- $(pass) lint: succeeded · 1\\.2s'));
  assert.ok(lines.includes('- $(sync~spin) review: running · 40% · reading'));
  assert.ok(lines.includes('- $(circle-outline) build: pending'));
});

test('markdown and icon syntax in names is escaped in the tooltip', () => {
  const tooltip = statusBarTooltip(run({ workflow: 'a*b', steps: { x: step({ status: 'running', message: '$(bug) *hi*' }) } }));
  assert.match(tooltip, /a\\\*b/);
  assert.match(tooltip, /\\\$\\\(bug\\\) \\\*hi\\\*/);
});

test('an interrupted run says so, with its own icon', () => {
  const interrupted = run({ status: 'interrupted', steps: { a: step({ status: 'interrupted' }) } });
  assert.equal(statusBarText(interrupted), '$(debug-disconnect) checks interrupted');
  assert.equal(runSummary(interrupted), 'interrupted');
  assert.ok(statusBarTooltip(interrupted).split('\n').includes('- $(debug-disconnect) a: interrupted'));
});

test('a run in a status this client does not know is still shown, by that word', () => {
  const later = run({ status: 'paused' as RunStatus, steps: { a: step({ status: 'waiting' as StepStatus }) } });
  assert.equal(statusBarText(later), '$(question) checks paused');
  assert.equal(runSummary(later), 'paused');
  assert.ok(statusBarTooltip(later).split('\n').includes('- $(question) a: waiting'));
});

test('a run a cancel is stopping says cancelling, with no count of done steps', () => {
  const stopping = run({
    cancelling: true,
    steps: { lint: step({ status: 'cancelled' }), sleeper: step({ status: 'running' }) },
  });
  assert.equal(statusBarText(stopping), '$(sync~spin) checks cancelling…');
  assert.equal(runSummary(stopping), 'cancelling…');
  assert.equal(statusBarText({ ...stopping, status: 'cancelled' }), '$(circle-slash) checks cancelled');
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runItem, stepItem, stepScope } from '../src/treeItems';
import { WorkflowSteps } from '../src/workflowSteps';
import type { RunStatus } from '../src/protocol';
import { run, step } from './fixtures';

const finished = run({
  status: 'failed',
  duration_s: 3.8,
  result_branch: 'treeflow/runs/20261128-093012-4f2a',
  steps: {
    lint: step({ status: 'succeeded', duration_s: 0.5, log: '/repo/.git/treeflow/logs/r/lint.log', branch: 'treeflow/r/lint' }),
    unit: step({ status: 'failed', duration_s: 3.2, attempts: 3, exit_code: 1, error: 'exit status 1', log: '/repo/unit.log' }),
    build: step({ status: 'skipped' }),
  },
});

test('a run item shows the workflow, its outcome and start time, with a stable id', () => {
  const item = runItem(finished, true);
  assert.equal(item.id, '20261128-093012-4f2a');
  assert.equal(item.label, 'checks');
  assert.match(item.description, /^failed: unit · \d\d:\d\d:\d\d$/);
  assert.deepEqual(item.icon, { id: 'error', color: 'testing.iconFailed' });
  assert.equal(item.contextValue, 'run resumable branch work discardable');
  assert.equal(item.expanded, true);
  assert.match(item.tooltip, /result: treeflow\/runs\/20261128-093012-4f2a/);
});

test('older finished runs start collapsed; running runs are expanded and cancellable', () => {
  assert.equal(runItem(finished, false).expanded, false);
  const running = runItem(run({ steps: { a: step({ status: 'running' }) } }), false);
  assert.equal(running.expanded, true);
  assert.equal(running.contextValue, 'run running');
  assert.equal(runItem(run({ status: 'succeeded' }), false).contextValue, 'run', 'a succeeded run is not resumable');
  assert.equal(running.icon.id, 'sync~spin');
});

test('a step item shows state, duration and icon; only steps with a log open it', () => {
  const lint = stepItem(finished, 'lint');
  assert.equal(lint.id, '20261128-093012-4f2a/lint');
  assert.equal(lint.label, 'lint');
  assert.equal(lint.description, 'succeeded · 0.5s');
  assert.equal(lint.icon.id, 'pass');
  assert.equal(lint.contextValue, 'step log branch work');
  assert.equal(lint.log, '/repo/.git/treeflow/logs/r/lint.log');
  assert.equal(lint.expanded, undefined);

  const build = stepItem(finished, 'build');
  assert.equal(build.contextValue, 'step');
  assert.equal(build.log, undefined);
  assert.equal(build.icon.id, 'debug-step-over');
});

test('a failed step tells why in its description and tooltip', () => {
  const unit = stepItem(finished, 'unit');
  assert.equal(unit.description, 'failed · 3.2s · exit status 1');
  assert.deepEqual(unit.tooltip.split('\n'), [
    'unit: failed',
    'duration: 3.2s',
    'attempts: 3',
    'exit code: 1',
    'error: exit status 1',
    'log: /repo/unit.log',
  ]);
});

test('an agent step shows its progress and message while running', () => {
  const agent = run({ steps: { review: step({ status: 'running', progress: 0.4, message: 'reading the diff' }) } });
  assert.equal(stepItem(agent, 'review').description, 'running · 40% · reading the diff');
});

test('asking for a step the run does not have is an error', () => {
  assert.throws(() => stepItem(finished, 'nope'), /no step nope/);
});

test('an interrupted run and its steps are listed as interrupted', () => {
  const interrupted = run({ status: 'interrupted', steps: { sleeper: step({ status: 'interrupted', error: 'treeflow was killed' }) } });
  const item = runItem(interrupted, true);
  assert.equal(item.contextValue, 'run resumable');
  assert.match(item.description, /^interrupted · \d\d:\d\d:\d\d$/);
  assert.deepEqual(item.icon, { id: 'debug-disconnect', color: 'list.warningForeground' });
  const stepShape = stepItem(interrupted, 'sleeper');
  assert.equal(stepShape.description, 'interrupted · treeflow was killed');
  assert.equal(stepShape.icon.id, 'debug-disconnect');
});

test('a run in a status this client does not know still makes items', () => {
  const item = runItem(run({ status: 'paused' as RunStatus }), true);
  assert.equal(item.icon.id, 'question');
  assert.match(item.description, /^paused/);
});

test('a finished run with a result shows its change stat; review actions only once it has ended', () => {
  const done = run({ status: 'succeeded', duration_s: 1.5, result_branch: 'treeflow/runs/r', ended_at: '2026-11-28T09:30:14+00:00' });
  const item = runItem(done, true, '+120 −14 in 7 files');
  assert.match(item.description, /^succeeded in 1\.5s · \+120 −14 in 7 files · \d\d:\d\d:\d\d$/);
  assert.match(item.tooltip, /\nchanges: \+120 −14 in 7 files\n/);
  assert.equal(item.contextValue, 'run branch work discardable');
  assert.match(runItem(done, true).description, /^succeeded in 1\.5s · \d\d:\d\d:\d\d$/);

  const going = run({ result_branch: 'treeflow/runs/r', steps: { a: step({ status: 'succeeded', branch: 'treeflow/r/a' }) } });
  assert.equal(runItem(going, true).contextValue, 'run running branch');
  assert.equal(stepItem(going, 'a').contextValue, 'step branch');
  const failedWithStepWork = run({ status: 'failed', steps: { a: step({ status: 'succeeded', branch: 'treeflow/r/a' }) } });
  assert.equal(runItem(failedWithStepWork, true).contextValue, 'run resumable discardable');
  assert.equal(stepItem(failedWithStepWork, 'a').contextValue, 'step branch work');
});

test('a run a cancel is stopping offers no cancel, and its running steps say cancelling', () => {
  const stopping = run({ cancelling: true, steps: { sleeper: step({ status: 'running' }), lint: step({ status: 'cancelled' }) } });
  const item = runItem(stopping, true);
  assert.equal(item.contextValue, 'run cancelling');
  assert.match(item.description, /^cancelling…/);
  assert.equal(stepItem(stopping, 'sleeper').description, 'cancelling…');
  assert.equal(stepItem(stopping, 'lint').description, 'cancelled');
});

test('a run of some of its workflow steps says how many, in its description and tooltip', () => {
  const subset = run({ steps: { lint: step({ status: 'running' }), 'test[py=3.12]': step(), 'test[py=3.13]': step() } });
  assert.equal(stepScope(subset, ['lint', 'test', 'build', 'deploy', 'docs']), '2 of 5 steps');
  const item = runItem(subset, true, undefined, ['lint', 'test', 'build', 'deploy', 'docs']);
  assert.match(item.description, /^running 0\/3 · 2 of 5 steps · /);
  assert.match(item.tooltip, /\nran 2 of 5 steps: lint, test\[py=3\.12\], test\[py=3\.13\]\n/);
  assert.equal(stepScope(subset, ['lint', 'test']), undefined, 'every step');
  assert.equal(stepScope(subset, ['lint', 'build', 'other']), undefined, 'the file changed since');
  assert.equal(stepScope(subset, undefined), undefined, 'workflow not known');
  assert.doesNotMatch(runItem(subset, true).description, /steps/);
});

test('workflow steps are known by file path, for valid workflows only', async () => {
  const steps = new WorkflowSteps(async () => [
    { uri: 'file:///p/my%20repo/treeflow.yml', name: 'checks', steps: ['a', 'b'], errors: [], needs: {} },
    { uri: 'file:///p/my%20repo/.treeflow/bad.yml', name: 'bad', steps: [], errors: ['bad'], needs: {} },
  ]);
  let heard = 0;
  steps.onDidChange(() => heard++);
  await steps.reload();
  assert.deepEqual(steps.get('/p/my repo/treeflow.yml'), ['a', 'b']);
  assert.equal(steps.get('/p/my repo/.treeflow/bad.yml'), undefined);
  assert.equal(heard, 1);
  await steps.reload();
  assert.equal(heard, 1, 'listeners hear only of a change');
});

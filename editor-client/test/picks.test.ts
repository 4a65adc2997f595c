import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chosenSteps, displayPath, endedRunPicks, runPicks, stepPicks, workflowPicks } from '../src/picks';
import { run, step } from './fixtures';

test('workflow paths are shown relative to their workspace folder', () => {
  assert.equal(displayPath('file:///home/me/project/.treeflow/long%20one.yml', ['/home/me/project']), '.treeflow/long one.yml');
  assert.equal(displayPath('file:///elsewhere/treeflow.yml', ['/home/me/project']), '/elsewhere/treeflow.yml');
});

test('a workflow pick lists its steps, or its first error', () => {
  const [good, bad] = workflowPicks(
    [
      { uri: 'file:///p/treeflow.yml', name: 'checks', steps: ['lint', 'unit'], errors: [], needs: {} },
      { uri: 'file:///p/.treeflow/x.yml', name: 'x', steps: [], errors: ['x.yml:3:5: unknown key', 'x.yml:4:1: cycle'], needs: {} },
    ],
    ['/p'],
  );
  assert.deepEqual(
    { label: good?.label, description: good?.description, detail: good?.detail },
    { label: 'checks', description: 'treeflow.yml', detail: '2 steps: lint, unit' },
  );
  assert.equal(bad?.detail, '$(error) x.yml:3:5: unknown key (+1 more)');
});

test('step picks offer all steps first, selected, then each step with what it needs', () => {
  const picks = stepPicks({ uri: '', name: 'w', steps: ['a', 'b', 'c'], errors: [], needs: { a: [], b: ['a'], c: ['a', 'b'] } });
  assert.deepEqual(
    picks.map((p) => [p.label, p.detail, p.picked ?? false]),
    [
      ['All steps', undefined, true],
      ['a', 'needs nothing', false],
      ['b', 'needs a', false],
      ['c', 'needs a, b', false],
    ],
  );
  const [all, a, , c] = picks;
  assert.deepEqual(chosenSteps([all!, c!]), [], 'all steps wins');
  assert.deepEqual(chosenSteps([a!, c!]), ['a', 'c']);
  assert.equal(chosenSteps([]), undefined, 'nothing picked runs nothing');
});

test('run picks show progress', () => {
  const [pick] = runPicks([run({ workflow: 'long', steps: { s: step({ status: 'running' }) } })]);
  assert.equal(pick?.label, 'long');
  assert.equal(pick?.description, '0/1');
});

test('an ended run pick says how it ended and when it started', () => {
  const failed = run({ status: 'failed', steps: { fine: step({ status: 'succeeded' }), oops: step({ status: 'failed' }) } });
  const [pick] = endedRunPicks([failed]);
  assert.equal(pick?.label, 'checks');
  assert.match(pick?.description ?? '', /^failed: oops · \d\d:\d\d:\d\d$/);
  assert.equal(pick?.detail, 'run 20261128-093012-4f2a');
  assert.equal(pick?.value, failed);
  assert.equal(endedRunPicks([run({ status: 'cancelled', started_at: null })])[0]?.description, 'cancelled');
});

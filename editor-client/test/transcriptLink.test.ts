import assert from 'node:assert/strict';
import { test } from 'node:test';
import { transcriptKey, transcriptPath, transcriptStep } from '../src/transcriptLink';
import { agent, run, step } from './fixtures';

test("a transcript's path names its run and step and reads as a Markdown file", () => {
  const target = { runId: '20261128-093012-4f2a', stepId: 'fix_2-b' };
  assert.equal(transcriptPath(target), '/20261128-093012-4f2a/fix_2-b transcript.md');
  assert.deepEqual(transcriptStep(transcriptPath(target)), target);
});

test('a path that is not a transcript names no step', () => {
  for (const path of ['', '/', '/run/fix.md', '/run/ transcript.md', '/a/b/fix transcript.md', 'run/fix transcript.md']) {
    assert.equal(transcriptStep(path), undefined, path);
  }
});

test("the key changes with the step's state and its agent's report, not with other steps", () => {
  const working = run({ steps: { fix: step({ status: 'running', agent: agent({ turns: 1 }) }), lint: step() } });
  const key = transcriptKey(working, 'fix');
  assert.ok(key);
  const otherStep = run({ steps: { ...working.steps, lint: step({ status: 'running' }) } });
  assert.equal(transcriptKey(otherStep, 'fix'), key);
  const nextTurn = run({ steps: { ...working.steps, fix: step({ status: 'running', agent: agent({ turns: 2 }) }) } });
  assert.notEqual(transcriptKey(nextTurn, 'fix'), key);
  const logged = run({ steps: { ...working.steps, fix: step({ status: 'running', agent: agent({ turns: 1 }), log: '/l' }) } });
  assert.notEqual(transcriptKey(logged, 'fix'), key);
  assert.equal(transcriptKey(working, 'nope'), undefined);
  assert.equal(transcriptKey(undefined, 'fix'), undefined);
});

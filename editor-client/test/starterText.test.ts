import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createdMessage } from '../src/starterText';

test('a new workflow names its steps and sources, and how to run it', () => {
  const message = createdMessage({
    uri: 'file:///home/me/app/treeflow.yml',
    created: true,
    steps: ['lint', 'test', 'build'],
    sources: ['package.json', 'Makefile'],
  });
  assert.equal(message, 'wrote treeflow.yml, 3 steps from package.json, Makefile. "Run workflow" above its first line runs it.');
});

test('a repository with nothing to read gets an example step', () => {
  const message = createdMessage({ uri: 'file:///a/treeflow.yml', created: true, steps: ['hello'], sources: [] });
  assert.equal(
    message,
    'wrote treeflow.yml, 1 step with an example step (no lint, test or build commands were found). "Run workflow" above its first line runs it.',
  );
});

test('an existing workflow is opened, not replaced', () => {
  const message = createdMessage({ uri: 'file:///a/.treeflow/my%20checks.yml', created: false, steps: ['a'], sources: [] });
  assert.equal(message, 'my checks.yml already exists; opened it unchanged.');
});

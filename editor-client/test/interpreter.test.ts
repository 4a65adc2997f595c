import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeProblems, isRecentEnough, parseVersion, type Candidate } from '../src/interpreter';

const setting: Candidate = { command: '/opt/py/bin/python', source: 'setting' };
const onPath: Candidate = { command: '/usr/bin/python3', source: 'path' };
const fromExtension: Candidate = { command: '/p/.venv/bin/python', source: 'python-extension' };

test('the version a Python gives for --version, on stdout or (Python 2) stderr', () => {
  assert.deepEqual(parseVersion('Python 3.12.1\n'), [3, 12, 1]);
  assert.deepEqual(parseVersion('\nPython 2.7.18'), [2, 7, 18]);
  assert.deepEqual(parseVersion('Python 3.14.0rc1'), [3, 14, 0]);
  assert.equal(parseVersion('bash: python: command not found'), undefined);
});

test('3.11 is the oldest Python the server runs on', () => {
  assert.equal(isRecentEnough([3, 11, 0]), true);
  assert.equal(isRecentEnough([3, 13, 2]), true);
  assert.equal(isRecentEnough([4, 0, 0]), true);
  assert.equal(isRecentEnough([3, 10, 12]), false);
  assert.equal(isRecentEnough([2, 7, 18]), false);
});

test('each cause gets its own words, naming the interpreter and where it came from', () => {
  assert.equal(
    describeProblems([{ candidate: setting, problem: { kind: 'missing' } }]),
    'Treeflow needs Python 3.11 or newer to start its language server: "treeflow.python" (/opt/py/bin/python): no such file. Select an interpreter, or set "treeflow.python".',
  );
  assert.match(
    describeProblems([{ candidate: { command: 'python3', source: 'path' }, problem: { kind: 'not-on-path' } }]),
    /: no python3 was found on PATH\./,
  );
  assert.match(describeProblems([{ candidate: onPath, problem: { kind: 'too-old', version: '3.8.18' } }]), /: python3 on PATH \(\/usr\/bin\/python3\) is Python 3\.8\.18\./);
  assert.match(describeProblems([{ candidate: setting, problem: { kind: 'not-executable' } }]), /is not executable/);
  assert.match(
    describeProblems([{ candidate: setting, problem: { kind: 'not-python', answer: 'hello' } }]),
    /did not answer "--version" as a Python does \("hello"\)/,
  );
});

test('treeflow not loading is said only when that is the cause', () => {
  const message = describeProblems([
    { candidate: onPath, problem: { kind: 'not-loadable', version: '3.12.1', reason: "no module named 'yaml'" } },
  ]);
  assert.match(message, /^Treeflow could not start its language server: /);
  assert.match(message, /Python 3\.12\.1, could not load treeflow: no module named 'yaml'/);
  assert.doesNotMatch(message, /needs Python/);
});

test('every interpreter tried is named, in the order tried', () => {
  const message = describeProblems([
    { candidate: fromExtension, problem: { kind: 'too-old', version: '3.10.4' } },
    { candidate: onPath, problem: { kind: 'too-old', version: '3.8.18' } },
  ]);
  assert.match(message, /the Python extension's interpreter \(\/p\/\.venv\/bin\/python\) is Python 3\.10\.4; python3 on PATH \(\/usr\/bin\/python3\) is Python 3\.8\.18\./);
});

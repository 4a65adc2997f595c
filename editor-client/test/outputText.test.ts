import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyCarriageReturns, channelLines, displayLog, stripEscapes } from '../src/outputText';

test('colours, cursor moves, titles and links are dropped, tabs kept', () => {
  assert.equal(stripEscapes('\x1b[1;31mFAIL\x1b[0m\tsrc/a.ts'), 'FAIL\tsrc/a.ts');
  assert.equal(stripEscapes('\x1b]0;window title\x07done'), 'done');
  assert.equal(stripEscapes('\x1b]8;;https://x.invalid\x1b\\link\x1b]8;;\x1b\\'), 'link');
  assert.equal(stripEscapes('\x1b[2K\x1b[1Gbar \x1b(Bok'), 'bar ok');
  assert.equal(stripEscapes('bell\x07 back\x08'), 'bell back');
});

test('a carriage return starts the line over: the last state wins', () => {
  assert.equal(applyCarriageReturns('10%\r50%\r100%'), '100%');
  assert.equal(applyCarriageReturns('downloading 10%\rdone'), 'doneloading 10%');
  assert.equal(applyCarriageReturns('windows line\r'), 'windows line');
  assert.equal(applyCarriageReturns('plain'), 'plain');
});

test('each line of a chunk gets its own prefix, stderr lines say so', () => {
  assert.deepEqual(channelLines('lint', 'one\ntwo\n'), ['[lint] one', '[lint] two']);
  assert.deepEqual(channelLines('lint', 'partial'), ['[lint] partial']);
  assert.deepEqual(channelLines('unit', '\x1b[33mwarn\x1b[0m\n', 'stderr'), ['[unit stderr] warn']);
  assert.deepEqual(channelLines('unit', 'a\r\n\nb 1/3\rb 3/3\n'), ['[unit] a', '[unit] ', '[unit] b 3/3']);
});

test('a log shown in the editor is cleaned line by line, its last newline kept', () => {
  assert.equal(displayLog('\x1b[32mok\x1b[0m\n1/2\r2/2\n'), 'ok\n2/2\n');
  assert.equal(displayLog('no newline'), 'no newline');
  assert.equal(displayLog(''), '');
});

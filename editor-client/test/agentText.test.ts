import assert from 'node:assert/strict';
import { test } from 'node:test';
import { agentTooltip, agentUsage, formatTokens } from '../src/agentText';
import { stepDescription } from '../src/format';
import { stepItem } from '../src/treeItems';
import { agent, run, step } from './fixtures';

const working = agent({
  session_id: 's-1',
  turns: 3,
  input_tokens: 14_200,
  output_tokens: 96,
  cost_usd: 0.012,
  action: 'Bash: pytest -q',
  last_message: "I'll run the failing test first.\nThen fix it.",
});

test('token counts are short', () => {
  assert.equal(formatTokens(950), '950');
  assert.equal(formatTokens(43_568), '43.6k');
  assert.equal(formatTokens(1_250_000), '1.3M');
});

test('usage names only what the CLI reported', () => {
  assert.equal(agentUsage(working), '3 turns · 14.3k tokens · $0.0120');
  assert.equal(agentUsage(agent({ turns: 1 })), '1 turn');
  assert.equal(agentUsage(agent()), '');
});

test("a running agent step shows its current action and usage, a finished one its usage", () => {
  const running = step({ status: 'running', message: 'Bash: pytest -q', agent: working });
  assert.equal(stepDescription(running), 'running · Bash: pytest -q · 3 turns · 14.3k tokens · $0.0120');
  const thinking = step({ status: 'running', message: "I'll run the failing test first.", agent: agent({ turns: 1 }) });
  assert.equal(stepDescription(thinking), "running · I'll run the failing test first. · 1 turn");
  const done = step({ status: 'succeeded', duration_s: 18.2, agent: { ...working, action: null } });
  assert.equal(stepDescription(done), 'succeeded · 18.2s · 3 turns · 14.3k tokens · $0.0120');
});

test("the tooltip has the agent's session, tokens, action and last message", () => {
  assert.deepEqual(agentTooltip(working), [
    'agent: claude (session s-1)',
    'tokens: 14200 in, 96 out',
    'usage: 3 turns · 14.3k tokens · $0.0120',
    'doing: Bash: pytest -q',
    "last message:\nI'll run the failing test first.\nThen fix it.",
  ]);
  assert.deepEqual(agentTooltip(agent()), ['agent: claude']);
});

test('an agent step with a log offers its transcript', () => {
  const theRun = run({
    steps: {
      fix: step({ status: 'running', message: 'Bash: pytest -q', agent: working, log: '/tmp/fix.log' }),
      lint: step({ status: 'running', log: '/tmp/lint.log' }),
      waiting: step({ status: 'running', agent: agent() }),
    },
  });
  const fix = stepItem(theRun, 'fix');
  assert.match(fix.contextValue, /^step\b.*\bagent\b/);
  assert.match(fix.tooltip, /last message:\nI'll run the failing test first\.\nThen fix it\./);
  assert.doesNotMatch(fix.tooltip, /^message:/m);
  assert.doesNotMatch(stepItem(theRun, 'lint').contextValue, /\bagent\b/);
  assert.doesNotMatch(stepItem(theRun, 'waiting').contextValue, /\bagent\b/);
});

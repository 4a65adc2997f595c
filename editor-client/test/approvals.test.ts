import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gateQuestion, waitingGates } from '../src/approvals';
import { stepDescription, stepItemIcon } from '../src/format';
import type { ApprovalState } from '../src/protocol';
import { runSummary, statusBarText } from '../src/statusText';
import { stepItem } from '../src/treeItems';
import { run, step } from './fixtures';

function approval(overrides: Partial<ApprovalState> = {}): ApprovalState {
  return {
    message: 'Deploy to staging?',
    requested_at: '2026-11-28T09:31:00.000+00:00',
    expires_at: null,
    decision: null,
    decided_by: null,
    via: null,
    decided_at: null,
    note: null,
    ...overrides,
  };
}

const waiting = () =>
  run({
    steps: {
      build: step({ status: 'succeeded' }),
      deploy: step({ status: 'pending', approval: approval() }),
    },
  });

test('a step at its gate reads as waiting for approval, with a bell, in the view and the status bar', () => {
  const deploy = waiting().steps.deploy!;
  assert.equal(stepDescription(deploy), 'waiting for approval · Deploy to staging?');
  assert.equal(stepItemIcon(deploy).id, 'bell');
  assert.equal(statusBarText(waiting()), '$(bell) checks: deploy waiting for approval');
  assert.equal(runSummary(waiting()), 'waiting for approval: deploy');
  const item = stepItem(waiting(), 'deploy');
  assert.match(item.contextValue, /^step\b.*\bapproval\b/);
  assert.match(item.tooltip, /approval: Deploy to staging\?/);
});

test('a decided gate is no longer offered, and its step shows its own status', () => {
  const decided = run({
    steps: { deploy: step({ status: 'running', approval: approval({ decision: 'approved', decided_by: 'alice', via: 'editor' }) }) },
  });
  assert.deepEqual(waitingGates(decided), []);
  assert.doesNotMatch(stepItem(decided, 'deploy').contextValue, /approval/);
  assert.match(stepItem(decided, 'deploy').tooltip, /approved by alice \(editor\)/);
  assert.equal(stepItemIcon(decided.steps.deploy!).id, 'sync~spin');
});

test('a gate of a running run is offered as it is; one of a stopped run says a decision resumes it', () => {
  const [live] = waitingGates(waiting());
  assert.ok(live);
  assert.equal(gateQuestion(live), 'Treeflow: checks · deploy: Deploy to staging?');
  const stopped = run({ status: 'interrupted', steps: { deploy: step({ status: 'interrupted', approval: approval() }) } });
  const [again] = waitingGates(stopped);
  assert.ok(again);
  assert.equal(again.live, false);
  assert.notEqual(again.key, live.key, 'offered again once the run stopped');
  assert.match(gateQuestion(again), /when its run stopped: Deploy to staging\? \(deciding resumes the run\)$/);
  assert.deepEqual(waitingGates(run({ status: 'succeeded', steps: { deploy: step({ approval: approval() }) } })), []);
});

test('a step from a server without approval gates has no approval and is never offered', () => {
  const old = step({ status: 'pending' });
  delete (old as Partial<typeof old>).approval;
  assert.equal(stepDescription(old), 'pending');
  assert.deepEqual(waitingGates(run({ steps: { a: old } })), []);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RunStore } from '../src/runStore';
import { run } from './fixtures';

const older = run({ run_id: '20261128-090000-aaaa', started_at: '2026-11-28T09:00:00.000+00:00' });
const newer = run({ run_id: '20261128-100000-bbbb', started_at: '2026-11-28T10:00:00.000+00:00' });

test('runs are listed newest first, whatever order they arrive in', () => {
  const store = new RunStore();
  store.update(older);
  store.update(newer);
  assert.deepEqual(store.list().map((r) => r.run_id), [newer.run_id, older.run_id]);
});

test('an update replaces the run and returns what it was before', () => {
  const store = new RunStore();
  assert.equal(store.update(older), undefined);
  const ended = { ...older, status: 'succeeded' as const };
  assert.equal(store.update(ended), older);
  assert.equal(store.get(older.run_id)?.status, 'succeeded');
});

test('the current run is the newest running one, else the last to change', () => {
  const store = new RunStore();
  assert.equal(store.current(), undefined);
  store.update(older);
  store.update(newer);
  assert.equal(store.current()?.run_id, newer.run_id);
  store.update({ ...newer, status: 'succeeded' });
  assert.equal(store.current()?.run_id, older.run_id, 'still running');
  store.update({ ...older, status: 'cancelled' });
  assert.equal(store.current()?.run_id, older.run_id, 'ended last');
  assert.deepEqual(store.running(), []);
});

test('resumable runs are the ended, unsuccessful ones, newest first', () => {
  const store = new RunStore();
  const oldest = run({ run_id: '20261128-080000-cccc', started_at: '2026-11-28T08:00:00.000+00:00' });
  store.update({ ...oldest, status: 'interrupted' });
  store.update({ ...newer, status: 'failed' });
  store.update({ ...older, status: 'succeeded' });
  assert.deepEqual(store.resumable().map((r) => r.run_id), [newer.run_id, oldest.run_id]);
  store.update({ ...newer, status: 'running' });
  assert.deepEqual(store.resumable().map((r) => r.run_id), [oldest.run_id], 'a resumed run is running again');
});

test('a list from the server replaces the runs but not updates that arrived after it was asked for', () => {
  const store = new RunStore();
  store.update({ ...older, status: 'running' });
  const since = store.mark();
  store.update({ ...newer, status: 'succeeded' });
  // The list was made before `newer` ended, and no longer knows a run of a previous server.
  store.replace([{ ...newer, status: 'running' }], since);
  assert.deepEqual(store.list().map((r) => [r.run_id, r.status]), [[newer.run_id, 'succeeded']]);
});

test('after a list arrives, the newest run is the current one', () => {
  const store = new RunStore();
  store.replace([{ ...newer, status: 'succeeded' }, { ...older, status: 'failed' }], store.mark());
  assert.equal(store.current()?.run_id, newer.run_id);
});

test('listeners hear of each change until they unsubscribe', () => {
  const store = new RunStore();
  const heard: (string | undefined)[] = [];
  const subscription = store.onDidChange((changed) => heard.push(changed?.run_id));
  store.update(older);
  store.replace([], store.mark());
  subscription.dispose();
  store.update(newer);
  assert.deepEqual(heard, [older.run_id, undefined]);
});

test('updates that came after a list was asked for stay the latest to change, in their order', () => {
  const store = new RunStore();
  store.update({ ...newer, status: 'succeeded' });
  store.update({ ...older, status: 'running' });
  const since = store.mark();
  // The list went out before `older` ended; its update overtook the answer.
  store.update({ ...older, status: 'cancelled' });
  store.replace([{ ...newer, status: 'succeeded' }, { ...older, status: 'running' }], since);
  assert.equal(store.get(older.run_id)?.status, 'cancelled');
  assert.equal(store.current()?.run_id, older.run_id, 'the run that ended last, not the newest listed');
  // A later list knows the update: it no longer counts as newer than the list.
  store.replace([{ ...newer, status: 'succeeded' }, { ...older, status: 'cancelled' }], store.mark());
  assert.equal(store.current()?.run_id, newer.run_id);
});

// What the status bar and the Runs view say while a run changes: "cancelling…" from the moment a
// cancel is asked for until a step that ignores SIGTERM is killed, one progress item per run, and
// never a state the run was not in at one moment (a step ended without its duration, a step
// pending after its needs ended).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launch } from './editor.mjs';
import { waitFor } from './harness.mjs';

let editor;
let startedMark;

// Each need writes enough files that saving its work takes a moment; the joins start after.
const many = (name) => `mkdir -p out; for i in $(seq 1500); do echo $i > out/${name}$i.txt; done`;

function addWorkflows({ workspace, runDir }) {
  startedMark = path.join(runDir, 'holdout.started');
  fs.writeFileSync(
    path.join(workspace, '.treeflow', 'stubborn.yml'),
    ['name: stubborn', 'steps:', `  holdout: {run: "trap '' TERM; echo $$ > ${startedMark}; while :; do sleep 0.1; done"}`, ''].join('\n'),
  );
  fs.writeFileSync(
    path.join(workspace, '.treeflow', 'joins.yml'),
    [
      'name: joins',
      'max_parallel: 6',
      'steps:',
      `  left: {run: "${many('l')}"}`,
      `  right: {run: "${many('r')}; sleep 0.3"}`,
      '  join: {run: "ls out | wc -l", needs: [left, right]}',
      '',
    ].join('\n'),
  );
}

before(async () => {
  editor = await launch('run-state', { prepare: addWorkflows });
});

after(async () => {
  await editor?.close();
});

/** The text of every status bar item and every Runs view row, read in one go. */
function sample() {
  return editor.page.evaluate(() => ({
    status: [...document.querySelectorAll('.part.statusbar .statusbar-item')].map((el) => el.textContent?.trim() ?? ''),
    rows: [...document.querySelectorAll('.part.sidebar .monaco-list-row')].map((el) => el.textContent?.trim() ?? ''),
  }));
}

/** Samples what the editor shows until `done()` holds; returns every sample. */
async function watch(what, done, timeoutMs) {
  const samples = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const seen = await sample();
    samples.push(seen);
    if (await done(seen)) {
      return samples;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}; last seen: ${JSON.stringify(seen)}`);
    }
  }
}

test(
  'a cancel shows "cancelling…" at once while a step ignores SIGTERM, then "cancelled", never a done count',
  { timeout: 90000 },
  () =>
    editor.step('state-cancelling', async () => {
      await editor.runFromPalette('Treeflow: Run Workflow');
      await editor.pickRow('1 step: holdout').click();
      await editor.statusItem('sync', 'stubborn 0/1').waitFor();
      await waitFor('the step to start', () => fs.existsSync(startedMark), 30000);
      await editor.runFromPalette('Treeflow: Show Runs');
      const runRow = editor.sidebarRow(/stubborn.*running 0\/1/);
      await runRow.hover();
      const cancel = runRow.locator('.actions .action-label[aria-label*="Cancel Run"]');
      await cancel.waitFor();
      await cancel.click();
      const asked = Date.now();

      await editor.statusItem('sync', 'stubborn cancelling…').waitFor({ timeout: 4000 });
      assert.ok(Date.now() - asked < 4000, 'shown before the 5 s kill grace ends');
      await editor.sidebarRow(/stubborn.*cancelling…/).waitFor();
      await editor.sidebarRow(/^holdout\s*cancelling…/).waitFor();
      await editor.sidebarRow(/stubborn.*cancelling…/).hover();
      assert.equal(await runRow.locator('.actions .action-label[aria-label*="Cancel Run"]').count(), 0, 'no cancel on a run being cancelled');
      await editor.shot('state-01-cancelling');

      const samples = await watch('the run to end cancelled', ({ status }) => status.includes('stubborn cancelled'), 30000);
      const counts = samples.flatMap(({ status }) => status.filter((text) => /stubborn \d+\/\d+/.test(text)));
      assert.deepEqual(counts, [], 'no done count while cancelling');
      await editor.sidebarRow(/^holdout\s*cancelled/).waitFor();
      await editor.shot('state-02-cancelled');
    })(),
);

test(
  'a run has one progress item in the status bar, not a second from the language server',
  { timeout: 90000 },
  () =>
    editor.step('state-one-progress', async () => {
      await editor.runFromPalette('Treeflow: Run Workflow');
      await editor.pickRow('3 steps: lint, unit, build').click();
      await editor.quickInput().getByText('Treeflow: Run checks').waitFor();
      await editor.pickRow('build').waitFor();
      await editor.page.keyboard.press('Enter');
      await editor.statusItem('sync', /checks [0-2]\/3/).waitFor();
      await editor.shot('state-03-one-progress');
      const samples = await watch('the run to succeed', ({ status }) => status.some((text) => /checks \d+\.\ds/.test(text)), 60000);
      const items = samples.map(({ status }) => status.filter((text) => text.includes('checks')));
      assert.deepEqual(items.filter((shown) => shown.length > 1), [], 'one item about the run at a time');
      assert.deepEqual(items.flat().filter((text) => text.includes('treeflow: checks')), [], 'no work-done progress item');
    })(),
);

test(
  'the Runs view never shows a step ended without its duration, or a join pending after its needs ended',
  { timeout: 120000 },
  () =>
    editor.step('state-consistent', async () => {
      await editor.runFromPalette('Treeflow: Run Workflow');
      await editor.pickRow('3 steps: left, right, join').click();
      await editor.quickInput().getByText('Treeflow: Run joins').waitFor();
      await editor.pickRow('join').waitFor();
      await editor.page.keyboard.press('Enter');
      await editor.runFromPalette('Treeflow: Show Runs');
      await editor.sidebarRow(/joins.*running/).waitFor();
      const samples = await watch('the run to succeed', ({ rows }) => rows.some((row) => /joins.*succeeded in/.test(row)), 90000);
      await editor.shot('state-04-joins-succeeded');
      const problems = [];
      for (const { rows } of samples) {
        const state = (id) => rows.find((row) => row.startsWith(id))?.slice(id.length).trim() ?? '';
        for (const id of ['left', 'right', 'join']) {
          if (state(id) === 'succeeded') {
            problems.push(`${id} succeeded without its duration`);
          }
        }
        if (state('join').startsWith('pending') && ['left', 'right'].every((id) => /^succeeded/.test(state(id)))) {
          problems.push('join pending after left and right succeeded');
        }
      }
      assert.deepEqual([...new Set(problems)], []);
    })(),
);

// End to end in real VS Code (code-server), driven like a person would through headless Chromium:
// the command palette, quick picks, the status bar and the runs view, against a real
// `treeflow serve` running real git worktrees. Screenshots of each state go to test-artifacts/editor/.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { launch } from './editor.mjs';
import { isGone, waitFor } from './harness.mjs';

let editor;

before(async () => {
  editor = await launch('trusted');
  await editor.shot('01-ready');
});

after(async () => {
  await editor?.close();
});

/** The test body, keeping a screenshot if it fails. */
const step = (name, fn) => () => editor.step(name, fn)();

test(
  'runs a workflow from the palette and follows it in the status bar and the runs view',
  { timeout: 90000 },
  step('run', async () => {
    const { page } = editor;
    await editor.runFromPalette('Treeflow: Run Workflow');
    // The workflow pick replaces the palette; its rows come from treeflow.listWorkflows.
    await editor.pickRow('3 steps: lint, unit, build').waitFor();
    await editor.pickRow('.treeflow/long.yml').waitFor();
    await editor.shot('02-pick-workflow');
    await editor.pickRow('3 steps: lint, unit, build').click();

    await editor.quickInput().getByText('Treeflow: Run checks').waitFor();
    await editor.pickRow('build').waitFor();
    await editor.shot('03-pick-steps');
    await page.keyboard.press('Enter'); // "All steps" is selected at first

    const running = editor.statusItem('sync', /checks [0-2]\/3/);
    await running.waitFor();
    assert.ok(await running.locator('.codicon-modifier-spin').count(), 'the running icon spins');
    assert.equal(await running.evaluate((el) => el.classList.contains('error-kind')), false, 'no error colour');
    await editor.shot('04-running');

    const succeeded = editor.statusItem('check', /checks \d+\.\ds/);
    await succeeded.waitFor();
    await editor.shot('05-succeeded');

    // Clicking the status bar item of a run that succeeded with changes opens their review and
    // shows the runs view, newest run expanded.
    await succeeded.click();
    await page.locator('.tabs-container .tab', { hasText: /checks: run \d{8}-/ }).waitFor();
    await page.locator('.editor-instance', { hasText: 'build.txt' }).first().waitFor();
    await editor.sidebarRow(/checks.*succeeded in/).waitFor();
    for (const stepId of ['lint', 'unit', 'build']) {
      await editor.sidebarRow(new RegExp(`^${stepId}\\s*succeeded`)).waitFor();
    }
    await editor.shot('06-runs-view');

    // A step with output opens its log; the output channel has the same lines, prefixed.
    await editor.sidebarRow(/^lint\s*succeeded/).click();
    await page.locator('.tabs-container .tab', { hasText: 'lint.log' }).waitFor();
    await page.locator('.editor-instance .view-lines', { hasText: 'linting' }).first().waitFor();
    await editor.runFromPalette('Treeflow: Show Output');
    await page.locator('.panel .view-lines', { hasText: '[lint] linting' }).first().waitFor();
    await editor.shot('07-step-log-and-output');
  }),
);

test(
  'cancels a long run from the palette and leaves no step process behind',
  { timeout: 90000 },
  step('cancel', async () => {
    await editor.runFromPalette('Treeflow: Run Workflow');
    await editor.pickRow('1 step: sleeper').click();

    await editor.statusItem('sync', 'long 0/1').waitFor();
    const recorded = () => fs.existsSync(editor.pidFile) && fs.readFileSync(editor.pidFile, 'utf8').trim().split(/\s+/);
    await waitFor('the step to record its pids', () => recorded()?.length === 2, 30000);
    const pids = recorded().map(Number);
    assert.ok(pids.every((pid) => !isGone(pid)), 'the step is running');
    await editor.shot('08-long-running');

    await editor.runFromPalette('Treeflow: Cancel Run');
    await editor.pickRow('long').waitFor();
    await editor.shot('09-pick-run-to-cancel');
    await editor.pickRow('long').click();

    await editor.statusItem('circle-slash', 'long cancelled').waitFor();
    await editor.sidebarRow(/^sleeper\s*cancelled/).waitFor();
    // The server sends the final state only after the step's process group is gone.
    assert.deepEqual(pids.filter((pid) => !isGone(pid)), [], 'no process of the step is left');
    await editor.shot('10-cancelled');
  }),
);

test(
  'shows a failed run and its failed step in red',
  { timeout: 90000 },
  step('fail', async () => {
    await editor.runFromPalette('Treeflow: Run Workflow');
    await editor.pickRow('2 steps: fine, oops').click();
    await editor.quickInput().getByText('Treeflow: Run broken').waitFor();
    await editor.pickRow('oops').waitFor();
    await editor.page.keyboard.press('Enter');

    const failed = editor.statusItem('error', 'broken: oops');
    await failed.waitFor();
    assert.equal(await failed.evaluate((el) => el.classList.contains('error-kind')), true, 'error colour');
    await editor.sidebarRow(/^oops\s*failed.*exit status 3/).waitFor();
    await editor.sidebarRow(/^fine\s*succeeded/).waitFor();
    await editor.shot('11-failed');
  }),
);

test(
  'runs one step from the code lens of a workflow file',
  { timeout: 90000 },
  step('lens', async () => {
    await editor.runFromPalette('View: Show Explorer');
    await editor.page.locator('.explorer-folders-view').getByText('treeflow.yml', { exact: true }).click();
    // The lens's command is the server's treeflow.run, which the language client registers.
    const lens = editor.page.locator('.codelens-decoration a', { hasText: 'Run step lint' });
    await lens.waitFor();
    await editor.shot('12-code-lens');
    await lens.click();
    await editor.statusItem('sync', 'checks 0/1').waitFor();
    await editor.statusItem('check', /checks \d+\.\ds/).waitFor();
    await editor.shot('13-code-lens-run');
  }),
);

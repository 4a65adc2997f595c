// End to end in real VS Code (code-server), driven like a person would through headless Chromium:
// the command palette, quick picks, the status bar and the runs view, against a real
// `treeflow serve` running real git worktrees. Screenshots of each state go to test-artifacts/editor/.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createWorkspace, isGone, openEditor, startCodeServer, waitFor } from './harness.mjs';

const root = path.resolve(import.meta.dirname, '..', '..');
const lab = process.env.EDITOR_TEST_DIR ?? path.join(root, '.editor-test');
const runDir = path.join(lab, 'run');
const shots = process.env.EDITOR_TEST_SHOTS ?? path.join(root, 'test-artifacts', 'editor');
const workspace = path.join(runDir, 'workspace');
const pidFile = path.join(runDir, 'long.pids');

let editor;
let page;

before(async () => {
  const vsix = process.env.TREEFLOW_VSIX;
  assert.ok(vsix && fs.existsSync(vsix), 'TREEFLOW_VSIX must name the packed extension');
  fs.rmSync(runDir, { recursive: true, force: true });
  fs.rmSync(shots, { recursive: true, force: true });
  fs.mkdirSync(workspace, { recursive: true });
  fs.mkdirSync(shots, { recursive: true });
  createWorkspace(workspace, pidFile);
  editor = await startCodeServer({
    codeServer: path.join(lab, 'code-server', 'bin', 'code-server'),
    vsix,
    python: process.env.TREEFLOW_PYTHON ?? path.join(root, '.venv', 'bin', 'python'),
    runDir,
    workspace,
  });
  ({ page } = await openEditor(editor.url, runDir));
  // The explorer lists the workspace once the workbench has loaded it; the Treeflow icon in the
  // activity bar shows that the extension's contributions (and so its commands) are registered.
  await page.locator('.explorer-folders-view').getByText('treeflow.yml', { exact: true }).waitFor({ timeout: 60000 });
  await page.locator('.part.activitybar [aria-label^="Treeflow"]').first().waitFor({ timeout: 60000 });
  await shot('01-ready');
});

after(async () => {
  await page?.context().close().catch(() => {});
  await editor?.stop();
});

async function shot(name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`) });
}

/** Runs `fn`; on failure keeps a screenshot of what the editor showed. */
function step(name, fn) {
  return async () => {
    try {
      await fn();
    } catch (error) {
      await shot(`fail-${name}`).catch(() => {});
      throw error;
    }
  };
}

const statusBar = () => page.locator('.part.statusbar');
const quickInput = () => page.locator('.quick-input-widget');
const pickRow = (text) => quickInput().locator('.monaco-list-row', { hasText: text }).first();
/** The treeflow status bar item, by its codicon and a pattern on its text. */
const statusItem = (icon, text) => statusBar().locator('.statusbar-item', { has: page.locator(`.codicon-${icon}`), hasText: text });
const runsRow = (text) => page.locator('.part.sidebar .monaco-list-row', { hasText: text }).first();

async function runFromPalette(title) {
  // The palette lists the commands known when it opens; if the extension's arrive later, reopen it.
  for (let attempt = 1; ; attempt++) {
    await page.keyboard.press('F1');
    const input = quickInput().locator('input');
    await input.waitFor({ state: 'visible' });
    await input.fill(`>${title}`);
    try {
      await pickRow(title).waitFor({ timeout: 5000 });
      break;
    } catch (error) {
      if (attempt === 3) {
        throw error;
      }
      await page.keyboard.press('Escape');
    }
  }
  await page.keyboard.press('Enter');
}

test(
  'runs a workflow from the palette and follows it in the status bar and the runs view',
  { timeout: 120000 },
  step('run', async () => {
    await runFromPalette('Treeflow: Run Workflow');
    // The workflow pick replaces the palette; its rows come from treeflow.listWorkflows.
    await pickRow('3 steps: lint, unit, build').waitFor({ timeout: 60000 });
    await pickRow('.treeflow/long.yml').waitFor();
    await shot('02-pick-workflow');
    await pickRow('3 steps: lint, unit, build').click();

    await quickInput().getByText('Treeflow: Run checks').waitFor();
    await pickRow('build').waitFor();
    await shot('03-pick-steps');
    await page.keyboard.press('Enter'); // nothing selected: every step

    const running = statusItem('sync', /checks [0-2]\/3/);
    await running.waitFor();
    assert.ok(await running.locator('.codicon-modifier-spin').count(), 'the running icon spins');
    assert.equal(await running.evaluate((el) => el.classList.contains('error-kind')), false, 'no error colour');
    await shot('04-running');

    const succeeded = statusItem('check', /checks \d+\.\ds/);
    await succeeded.waitFor({ timeout: 60000 });
    await shot('05-succeeded');

    // Clicking the status bar item shows the runs view, newest run expanded.
    await succeeded.click();
    await runsRow(/checks.*succeeded in/).waitFor();
    for (const stepId of ['lint', 'unit', 'build']) {
      await runsRow(new RegExp(`^${stepId}\\s*succeeded`)).waitFor();
    }
    await page.waitForTimeout(300); // the sidebar slides in; let it settle for the picture
    await shot('06-runs-view');

    // A step with output opens its log; the output channel has the same lines, prefixed.
    await runsRow(/^lint\s*succeeded/).click();
    await page.locator('.tabs-container .tab', { hasText: 'lint.log' }).waitFor();
    await page.locator('.editor-instance .view-lines', { hasText: 'linting' }).first().waitFor();
    await runFromPalette('Treeflow: Show Output');
    await page.locator('.panel .view-lines', { hasText: '[lint] linting' }).first().waitFor();
    await shot('07-step-log-and-output');
  }),
);

test(
  'cancels a long run from the palette and leaves no step process behind',
  { timeout: 120000 },
  step('cancel', async () => {
    await runFromPalette('Treeflow: Run Workflow');
    await pickRow('1 step: sleeper').waitFor({ timeout: 60000 });
    await pickRow('1 step: sleeper').click();

    await statusItem('sync', 'long 0/1').waitFor();
    await waitFor('the step to record its pids', () => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').trim().split(/\s+/).length === 2, 30000);
    const pids = fs.readFileSync(pidFile, 'utf8').trim().split(/\s+/).map(Number);
    assert.ok(pids.every((pid) => !isGone(pid)), 'the step is running');
    await shot('08-long-running');

    await runFromPalette('Treeflow: Cancel Run');
    await pickRow('long').waitFor();
    await shot('09-pick-run-to-cancel');
    await pickRow('long').click();

    await statusItem('circle-slash', 'long cancelled').waitFor({ timeout: 30000 });
    await runsRow(/^sleeper\s*cancelled/).waitFor();
    // The server sends the final state only after the step's process group is gone.
    assert.deepEqual(pids.filter((pid) => !isGone(pid)), [], 'no process of the step is left');
    await shot('10-cancelled');
  }),
);

test(
  'shows a failed run and its failed step in red',
  { timeout: 120000 },
  step('fail', async () => {
    await runFromPalette('Treeflow: Run Workflow');
    await pickRow('2 steps: fine, oops').waitFor({ timeout: 60000 });
    await pickRow('2 steps: fine, oops').click();
    await quickInput().getByText('Treeflow: Run broken').waitFor();
    await pickRow('oops').waitFor();
    await page.keyboard.press('Enter');

    const failed = statusItem('error', 'broken: oops');
    await failed.waitFor({ timeout: 60000 });
    assert.equal(await failed.evaluate((el) => el.classList.contains('error-kind')), true, 'error colour');
    await runsRow(/^oops\s*failed.*exit status 3/).waitFor();
    await runsRow(/^fine\s*succeeded/).waitFor();
    await shot('11-failed');
  }),
);

test(
  'runs one step from the code lens of a workflow file',
  { timeout: 120000 },
  step('lens', async () => {
    await runFromPalette('View: Show Explorer');
    await page.locator('.explorer-folders-view').getByText('treeflow.yml', { exact: true }).click();
    // The lens's command is the server's treeflow.run, which the language client registers.
    const lens = page.locator('.codelens-decoration a', { hasText: 'Run step lint' });
    await lens.waitFor({ timeout: 60000 });
    await shot('12-code-lens');
    await lens.click();
    await statusItem('sync', 'checks 0/1').waitFor();
    await statusItem('check', /checks \d+\.\ds/).waitFor({ timeout: 60000 });
    await shot('13-code-lens-run');
  }),
);

// What a user reads of runs in the editor: the output channel and step logs (one stamped line per
// output line, no escape codes, progress lines as they ended, stderr marked), the step picker, an
// invalid workflow and its quick fix, runs of some steps, and the notification of a failed run.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launch } from './editor.mjs';

let editor;

// printf turns each \033 into ESC and each \r into a carriage return, as colourful tools print.
const NOISY = [
  'name: noisy',
  'steps:',
  '  talk:',
  '    run: |',
  "      printf '\\033[1;31mred\\033[0m text\\n'",
  "      printf 'one\\ntwo\\nthree\\n'",
  "      printf 'progress 10%%\\rprogress 50%%\\rprogress 100%%\\n'",
  "      echo 'to stderr' >&2",
  '',
].join('\n');
const INVALID = ['name: invalid', 'steps:', '  a: {rn: "true"}', ''].join('\n');

before(async () => {
  editor = await launch('output', {
    prepare: ({ workspace }) => {
      fs.writeFileSync(path.join(workspace, '.treeflow', 'noisy.yml'), NOISY);
      fs.writeFileSync(path.join(workspace, '.treeflow', 'invalid.yml'), INVALID);
    },
  });
});

after(async () => {
  await editor?.close();
});

const step = (name, fn) => () => editor.step(name, fn)();

/** The lines the output panel or the active editor shows, spaces as typed. */
async function shownLines(container) {
  const lines = await editor.page.locator(`${container} .view-lines .view-line`).allTextContents();
  return lines.map((line) => line.replace(/\u00a0/g, ' '));
}

async function showOutput() {
  await editor.runFromPalette('Treeflow: Show Output');
  await editor.page.locator('.panel .view-lines').first().waitFor();
}

async function pickWorkflow(detail) {
  await editor.runFromPalette('Treeflow: Run Workflow');
  await editor.pickRow(detail).click();
}

test(
  'an invalid workflow picked to run opens with the Problems panel, and its typo has a quick fix',
  { timeout: 90000 },
  step('invalid', async () => {
    const { page } = editor;
    await pickWorkflow('.treeflow/invalid.yml');
    await page.locator('.tabs-container .tab', { hasText: 'invalid.yml' }).waitFor();
    await page.locator('.panel .markers-panel', { hasText: 'did you mean `run`?' }).first().waitFor();
    await editor.toast('Treeflow: invalid.yml has 2 problems; see the Problems panel.').waitFor();
    assert.equal(await editor.toast(/\/workspace\/\.treeflow\/invalid\.yml/).count(), 0, 'no absolute path in the toast');
    await editor.shot('output-01-invalid-workflow');

    // The quick fix sits on the unknown key.
    await page.locator('.editor-instance .view-line span', { hasText: /^rn$/ }).first().click();
    const fix = page.locator('.action-widget, .context-view').getByText('Change to `run`');
    // The editor may take the key before it has the code actions for the cursor: ask again then.
    for (let attempt = 1; ; attempt++) {
      await page.keyboard.press('Control+Period');
      try {
        await fix.waitFor({ timeout: 5000 });
        break;
      } catch (error) {
        if (attempt === 3) {
          throw error;
        }
        await page.keyboard.press('Escape');
      }
    }
    await editor.shot('output-02-quick-fix');
    await fix.click();
    await page.locator('.editor-instance .view-line', { hasText: 'a: {run: "true"}' }).waitFor();
    await page.keyboard.press('Control+S');
    await page.locator('.panel .markers-panel', { hasText: 'did you mean' }).waitFor({ state: 'detached' });
  }),
);

test(
  'the step picker offers all steps, selected, and each step with its needs; a subset says so in the Runs view',
  { timeout: 90000 },
  step('picker', async () => {
    const { page } = editor;
    await pickWorkflow('3 steps: lint, unit, build');
    await editor.quickInput().getByText('Treeflow: Run checks').waitFor();
    const all = editor.pickRow('All steps');
    await all.waitFor();
    assert.equal(await all.getAttribute('aria-checked'), 'true', '"All steps" is selected');
    await editor.pickRow('needs lint, unit').waitFor();
    await editor.shot('output-03-step-picker');
    await all.click(); // deselect it
    await editor.pickRow(/^unit/).click();
    assert.equal(await all.getAttribute('aria-checked'), 'false');
    await page.keyboard.press('Enter');

    await editor.statusItem('check', /checks \d+\.\ds/).waitFor({ timeout: 60000 });
    await editor.runFromPalette('Treeflow: Show Runs');
    await editor.sidebarRow(/checks.*succeeded in .* · 1 of 3 steps/).waitFor();
    await editor.shot('output-04-subset-in-runs-view');
  }),
);

test(
  'a run started from a code lens is logged with its steps and shown as a subset',
  { timeout: 90000 },
  step('lens', async () => {
    const { page } = editor;
    await editor.runFromPalette('View: Show Explorer');
    await page.locator('.explorer-folders-view').getByText('treeflow.yml', { exact: true }).click();
    const lens = page.locator('.codelens-decoration a', { hasText: 'Run step lint' });
    await lens.waitFor();
    await lens.click();
    await showOutput();
    const started = page.locator('.panel .view-line', { hasText: 'of checks (steps: lint)' }).last();
    await started.waitFor();
    // Ended before the next test starts a run of its own, which the status bar would then hide.
    const [, runId] = /Started\s+run\s+(\S+)\s+of\s+checks/.exec(await started.textContent());
    await page.locator('.panel .view-lines', { hasText: `Run ${runId} of checks: succeeded` }).waitFor({ timeout: 60000 });
    await editor.runFromPalette('Treeflow: Show Runs');
    await editor.sidebarRow(/checks.*1 of 3 steps/).waitFor();
    await editor.shot('output-05-code-lens-run-logged');
  }),
);

test(
  'step output reads cleanly in the output channel and in the step log; the log file keeps the bytes',
  { timeout: 90000 },
  step('output', async () => {
    const { page } = editor;
    await pickWorkflow('1 step: talk');
    await editor.statusItem('check', /noisy \d+\.\ds/).waitFor({ timeout: 60000 });

    await showOutput();
    await page.locator('.panel .view-lines', { hasText: '[talk stderr] to stderr' }).waitFor();
    const channel = await shownLines('.panel');
    for (const expected of ['[talk] red text', '[talk] one', '[talk] two', '[talk] three', '[talk] progress 100%']) {
      // Each line with its own time and level.
      assert.ok(
        channel.some((line) => /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[info\] /.test(line) && line.endsWith(expected)),
        `"${expected}" on a stamped line of its own in:\n${channel.join('\n')}`,
      );
    }
    assert.ok(!channel.some((line) => line.includes('[1;31m') || line.includes('progress 10%')), channel.join('\n'));
    await editor.shot('output-06-output-channel');

    await editor.runFromPalette('Treeflow: Show Runs');
    await editor.sidebarRow(/^talk\s*succeeded/).click();
    await page.locator('.tabs-container .tab', { hasText: 'talk.log' }).waitFor();
    await page.locator('.editor-instance .view-lines', { hasText: 'progress 100%' }).first().waitFor();
    const log = await shownLines('.editor-instance');
    // As a terminal would have left it (stderr's line may come before or after stdout's).
    for (const expected of ['red text', 'one', 'two', 'three', 'progress 100%', 'to stderr']) {
      assert.ok(log.includes(expected), `"${expected}" in:\n${log.join('\n')}`);
    }
    assert.ok(!log.some((line) => line.includes('[1;31m') || line.includes('progress 10%')), log.join('\n'));
    await editor.shot('output-07-step-log');

    const logs = path.join(editor.runDir, 'workspace', '.git', 'treeflow', 'logs');
    const [raw] = fs
      .readdirSync(logs, { recursive: true })
      .map(String)
      .filter((file) => file.endsWith('talk.log'))
      .map((file) => fs.readFileSync(path.join(logs, file), 'utf8'));
    assert.ok(raw?.includes('\x1b[1;31mred\x1b[0m text\n'), 'the file keeps the escapes');
    assert.ok(raw?.includes('progress 10%\rprogress 50%\rprogress 100%\n'), 'and the carriage returns');
  }),
);

test(
  'a failed run says so in a notification whose "Show Log" opens the failed step log',
  { timeout: 90000 },
  step('failed', async () => {
    const { page } = editor;
    await pickWorkflow('2 steps: fine, oops');
    await editor.pickRow('All steps').waitFor();
    await page.keyboard.press('Enter');
    await editor.toast('Treeflow: broken failed: oops (exit status 3)').waitFor({ timeout: 60000 });
    await page.waitForTimeout(1000); // the toast fades in
    await editor.shot('output-08-failed-notification');
    await page.locator('.notifications-toasts .monaco-button', { hasText: 'Show Log' }).first().click();
    await page.locator('.tabs-container .tab', { hasText: 'oops.log' }).waitFor();
    await page.locator('.editor-instance .view-lines', { hasText: 'about to fail' }).first().waitFor();
    await editor.shot('output-09-failed-step-log');
  }),
);

// Resuming a failed run from the editor: a step fails, its workflow file is fixed in the editor,
// and "Resume Run" on the run's item in the Runs view runs that step again, in the same run,
// from the work of the step that had already succeeded, which does not run again.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launch } from './editor.mjs';
import { runEnv, waitFor } from './harness.mjs';

// `check` reads what `prepare` wrote, so it passes only when it starts from `prepare`'s work.
const WORKFLOW = [
  'name: fixable',
  'steps:',
  '  prepare: {run: "echo prepared | tee prepared.txt"}',
  '  check: {run: "cat prepared.txt && false", needs: [prepare]}',
  '',
].join('\n');

let editor;
let workflowFile;
/** `treeflow ARGS --json` in the workspace, parsed. */
let treeflowJson;

async function addFixableWorkflow({ workspace, runDir, python }) {
  workflowFile = path.join(workspace, '.treeflow', 'fixable.yml');
  fs.writeFileSync(workflowFile, WORKFLOW);
  const env = runEnv(runDir);
  execFileSync('git', ['add', '-A'], { cwd: workspace, env, stdio: 'pipe' });
  execFileSync('git', ['commit', '--quiet', '-m', 'a workflow to fix'], { cwd: workspace, env, stdio: 'pipe' });
  treeflowJson = (...args) =>
    JSON.parse(execFileSync(python, ['-m', 'treeflow.cli', ...args, '--json'], { cwd: workspace, env, encoding: 'utf8' }));
}

before(async () => {
  editor = await launch('resume', { prepare: addFixableWorkflow });
});

after(async () => {
  await editor?.close();
});

test(
  'a failed run resumed from the runs view after its file is fixed ends succeeded, its succeeded step not run again',
  { timeout: 120000 },
  () =>
    editor.step('resume', async () => {
      const { page } = editor;
      await editor.runFromPalette('Treeflow: Run Workflow');
      await editor.pickRow('2 steps: prepare, check').click();
      await editor.quickInput().getByText('Treeflow: Run fixable').waitFor();
      await editor.pickRow('check').waitFor();
      await page.keyboard.press('Enter');

      const failed = editor.statusItem('error', 'fixable: check');
      await failed.waitFor();
      await failed.click();
      await editor.sidebarRow(/^check\s*failed.*exit status 1/).waitFor();
      await editor.sidebarRow(/^prepare\s*succeeded/).waitFor();
      await editor.shot('17-resume-failed');
      // The failure's notification would take the Escape that closes the find widget below.
      await editor.toast('Treeflow: fixable failed: check (exit status 1)').waitFor();
      await editor.runFromPalette('Notifications: Clear All Notifications');
      await editor.toast('Treeflow: fixable failed').waitFor({ state: 'hidden' });

      const [before] = treeflowJson('runs').filter((run) => run.workflow === 'fixable');
      assert.equal(before.status, 'failed');
      assert.equal(before.steps.prepare.attempts, 1);
      assert.ok(before.steps.prepare.commit, 'prepare committed its work');

      // The palette offers the failed run to resume; leave it there and resume from the view.
      await editor.runFromPalette('Treeflow: Resume Run');
      await editor.pickRow(`run ${before.run_id}`).waitFor();
      assert.match(await editor.pickRow('fixable').innerText(), /failed: check/);
      await editor.shot('18-resume-pick');
      await page.keyboard.press('Escape');

      // Fix the workflow file in the editor: `false` becomes `true`.
      await editor.runFromPalette('View: Show Explorer');
      await page.locator('.explorer-folders-view').getByText('.treeflow', { exact: true }).click();
      await page.locator('.explorer-folders-view').getByText('fixable.yml', { exact: true }).click();
      await page.locator('.tabs-container .tab', { hasText: 'fixable.yml' }).waitFor();
      const text = page.locator('.editor-instance .view-lines', { hasText: 'cat prepared.txt' }).first();
      await text.click();
      await page.keyboard.press('Control+F');
      await page.locator('.find-widget textarea, .find-widget input').first().waitFor();
      await page.keyboard.type('false');
      await page.keyboard.press('Escape'); // the match stays selected; typing replaces it
      await page.keyboard.type('true');
      await page.keyboard.press('Control+S');
      await waitFor('the fixed workflow to be saved', () => fs.readFileSync(workflowFile, 'utf8').includes('&& true'), 10000);
      await editor.shot('19-resume-fixed-file');

      await editor.runFromPalette('Treeflow: Show Runs');
      const runRow = editor.sidebarRow(/fixable.*failed: check/);
      await runRow.hover();
      const resume = runRow.locator('.actions .action-label[aria-label*="Resume Run"]');
      await resume.waitFor();
      await editor.shot('20-resume-inline-action');
      await resume.click();

      await editor.statusItem('check', /fixable \d+\.\ds/).waitFor();
      await editor.sidebarRow(/fixable.*succeeded in/).waitFor();
      await editor.sidebarRow(/^check\s*succeeded/).waitFor();
      await editor.sidebarRow(/^prepare\s*succeeded/).waitFor();
      await editor.shot('21-resumed');

      // The same run, its failed step now succeeded, and `prepare` as it was: one attempt, its commit.
      const after = treeflowJson('show', before.run_id);
      assert.equal(after.status, 'succeeded');
      assert.equal(after.steps.check.status, 'succeeded');
      assert.deepEqual(
        {
          attempts: after.steps.prepare.attempts,
          started_at: after.steps.prepare.started_at,
          commit: after.steps.prepare.commit,
        },
        {
          attempts: 1,
          started_at: before.steps.prepare.started_at,
          commit: before.steps.prepare.commit,
        },
      );
      assert.equal(fs.readFileSync(after.steps.prepare.log, 'utf8'), 'prepared\n', 'prepare ran once');
      assert.equal(treeflowJson('runs').filter((run) => run.workflow === 'fixable').length, 1, 'no new run');
    })(),
);

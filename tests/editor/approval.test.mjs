// An approval gate decided in the editor: the run pauses at `deploy`, the status bar and the Runs
// view say it waits for approval, a notification asks the question, and its "Approve" lets the
// step run; the journal keeps the decision, made in the editor. "Reject…" from the palette asks
// why, fails the step without running it and keeps the reason.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launch } from './editor.mjs';
import { runEnv } from './harness.mjs';

const WORKFLOW = [
  'name: release',
  'steps:',
  '  build: {run: "echo built"}',
  '  deploy:',
  '    needs: [build]',
  '    approve: {message: "Deploy to staging?", timeout: 10m}',
  '    run: "echo deploying"',
  '',
].join('\n');

let editor;
/** `treeflow ARGS --json` in the workspace, parsed. */
let treeflowJson;

async function addGatedWorkflow({ workspace, runDir, python }) {
  fs.writeFileSync(path.join(workspace, '.treeflow', 'release.yml'), WORKFLOW);
  const env = runEnv(runDir);
  execFileSync('git', ['add', '-A'], { cwd: workspace, env, stdio: 'pipe' });
  execFileSync('git', ['commit', '--quiet', '-m', 'a gated workflow'], { cwd: workspace, env, stdio: 'pipe' });
  treeflowJson = (...args) =>
    JSON.parse(execFileSync(python, ['-m', 'treeflow.cli', ...args, '--json'], { cwd: workspace, env, encoding: 'utf8' }));
}

/** Runs the gated workflow, all its steps, from the palette. */
async function runRelease() {
  await editor.runFromPalette('Treeflow: Run Workflow');
  await editor.pickRow('2 steps: build, deploy').click();
  await editor.quickInput().getByText('Treeflow: Run release').waitFor();
  await editor.page.keyboard.press('Enter');
}

before(async () => {
  editor = await launch('approval', { prepare: addGatedWorkflow });
});

after(async () => {
  await editor?.close();
});

test(
  'a step waiting at its gate is shown waiting and approved from the notification',
  { timeout: 120000 },
  () =>
    editor.step('approval', async () => {
      const { page } = editor;
      await runRelease();

      const waiting = editor.statusItem('bell', 'release: deploy waiting for approval');
      await waiting.waitFor({ timeout: 60000 });
      const offer = editor.toast('Treeflow: release · deploy: Deploy to staging?');
      await offer.waitFor();
      await page.waitForTimeout(1000); // the toast fades in
      await editor.shot('50-approval-offered');

      await waiting.click();
      await editor.sidebarRow(/^deploy\s*waiting for approval · Deploy to staging\?/).waitFor();
      await editor.sidebarRow(/^build\s*succeeded/).waitFor();
      await editor.shot('51-approval-waiting-in-runs-view');

      await page.locator('.notifications-toasts .monaco-button', { hasText: 'Approve' }).first().click();
      await editor.statusItem('check', /release \d+\.\ds/).waitFor({ timeout: 60000 });
      await editor.sidebarRow(/^deploy\s*succeeded/).waitFor();
      await editor.shot('52-approved');

      const [run] = treeflowJson('runs').filter((entry) => entry.workflow === 'release');
      assert.equal(run.status, 'succeeded');
      const { approval } = run.steps.deploy;
      assert.equal(approval.decision, 'approved');
      assert.equal(approval.via, 'editor');
      assert.equal(approval.message, 'Deploy to staging?');

      const problems = editor
        .logs(/(Treeflow|exthost)\.log$/)
        .filter(({ text }) => /TypeError|Cannot read properties/.test(text));
      assert.deepEqual(problems, [], 'the extension logs no exception');
    })(),
);

test('a gate rejected from the palette fails its step without running it, keeping why', { timeout: 120000 }, () =>
  editor.step('approval-rejected', async () => {
    const { page } = editor;
    await runRelease();
    await editor.statusItem('bell', 'release: deploy waiting for approval').waitFor({ timeout: 60000 });

    await editor.runFromPalette('Treeflow: Reject…');
    await editor.pickRow('Deploy to staging?').click();
    const why = editor.quickInput().locator('input');
    await editor.quickInput().getByText('Why? (optional; kept with the decision)').waitFor();
    await why.fill('not on a Friday');
    await editor.shot('53-rejection-reason');
    await page.keyboard.press('Enter');

    await editor.statusItem('error', 'release: deploy').waitFor({ timeout: 60000 });
    await editor.sidebarRow(/^deploy\s*failed/).waitFor();
    await editor.shot('54-rejected');

    const [run] = treeflowJson('runs').filter((entry) => entry.workflow === 'release');
    assert.equal(run.status, 'failed');
    const deploy = run.steps.deploy;
    assert.equal(deploy.status, 'failed');
    assert.equal(deploy.attempts, 0, 'a rejected step never runs');
    assert.equal(deploy.approval.decision, 'rejected');
    assert.equal(deploy.approval.via, 'editor');
    assert.equal(deploy.approval.note, 'not on a Friday');
    assert.match(deploy.error, /rejected by .* \(editor\): not on a Friday/);
  })(),
);

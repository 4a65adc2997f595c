// Reviewing and applying a run's work from the editor: a workflow whose steps change files, the
// notification when it succeeds, "Review Changes" in the multi-file diff editor, "Apply to Working
// Tree" (the files on disk change), "Undo Last Apply" (they come back), an apply that conflicts
// with an edit (the notification names the file) and then with conflict markers, and "Discard Run".
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launch } from './editor.mjs';
import { runEnv, waitFor } from './harness.mjs';

const WORKFLOW = [
  'name: review',
  'steps:',
  `  edit: {run: 'printf "one\\ntwo changed\\nthree\\n" > notes.txt'}`,
  "  add: {run: 'echo added by the run > added.txt'}",
  '',
].join('\n');
const NOTES = 'one\ntwo\nthree\n';

let editor;
let workspace;
let git;

async function addReviewWorkflow(context) {
  workspace = context.workspace;
  fs.writeFileSync(path.join(workspace, '.treeflow', 'review.yml'), WORKFLOW);
  fs.writeFileSync(path.join(workspace, 'notes.txt'), NOTES);
  const env = runEnv(context.runDir);
  git = (...args) => execFileSync('git', args, { cwd: workspace, env, encoding: 'utf8' }).trim();
  git('add', '-A');
  git('commit', '--quiet', '-m', 'a workflow that changes files');
}

before(async () => {
  editor = await launch('review', { prepare: addReviewWorkflow });
});

after(async () => {
  await editor?.close();
});

// git replaces a file by removing it and writing it anew, so a check made meanwhile finds none.
const read = (name) => (exists(name) ? fs.readFileSync(path.join(workspace, name), 'utf8') : null);
const exists = (name) => fs.existsSync(path.join(workspace, name));

/** Right-clicks the run's row in the runs view and picks `action` from its menu. */
async function runAction(action) {
  const row = editor.sidebarRow(/^review\s*succeeded in/);
  await row.click({ button: 'right' });
  const item = editor.page.getByRole('menuitem', { name: action }).first();
  await item.waitFor();
  // A click that lands while the menu is still animating in is lost: click until the menu closes.
  await waitFor(`the ${action} menu item to be taken`, async () => {
    if (await item.isVisible()) {
      await item.click({ timeout: 2000 }).catch(() => {});
    }
    return !(await item.isVisible());
  }, 10000);
}

test(
  'a succeeded run is reviewed in the multi-file diff editor, applied, undone, applied over a conflicting edit, and discarded',
  { timeout: 180000 },
  () =>
    editor.step('review', async () => {
      const { page } = editor;
      await editor.runFromPalette('Treeflow: Run Workflow');
      await editor.pickRow('2 steps: edit, add').click();
      await editor.quickInput().getByText('Treeflow: Run review').waitFor();
      await page.keyboard.press('Enter');

      // When it succeeds, a notification gives the change stat and offers the next steps.
      const offer = editor.toast(/review succeeded: \+2 −1 in 2 files/);
      await offer.waitFor({ timeout: 60000 });
      await page.waitForTimeout(1000); // the toast fades in
      await editor.shot('22-review-offered');
      const runId = git('for-each-ref', '--format=%(refname:lstrip=4)', 'refs/heads/treeflow/runs');
      assert.match(runId, /^\d{8}-\d{6}-/);

      await page.locator('.notifications-toasts .monaco-button', { hasText: 'Review Changes' }).first().click();
      const tab = page.locator('.tabs-container .tab', { hasText: `review: run ${runId}` });
      await tab.waitFor();
      const changes = page.locator('.editor-instance').filter({ hasText: 'added.txt' }).filter({ hasText: 'notes.txt' });
      await changes.first().waitFor();
      // Both sides of notes.txt come from git's objects through treeflow.readFile.
      await page.locator('.editor-instance .view-lines', { hasText: 'two changed' }).first().waitFor();
      await page.locator('.editor-instance .view-lines', { hasText: 'added by the run' }).first().waitFor();
      await editor.sidebarRow(/^review\s*succeeded in.*\+2 −1 in 2 files/).waitFor();
      await editor.shot('23-review-multi-diff');
      assert.equal(read('notes.txt'), NOTES, 'reviewing changes nothing');

      // Apply: the files on disk change; HEAD does not move.
      const head = git('rev-parse', 'HEAD');
      const row = editor.sidebarRow(/^review\s*succeeded in/);
      await row.hover();
      await row.locator('.actions .action-label[aria-label*="Apply to Working Tree"]').click();
      await waitFor('the run to be applied', () => exists('added.txt') && read('notes.txt') === 'one\ntwo changed\nthree\n', 20000);
      await editor.toast(/Applied run .* to your working tree: 2 files changed/).waitFor();
      assert.equal(git('rev-parse', 'HEAD'), head);
      await page.waitForTimeout(1000);
      await editor.shot('24-review-applied');

      // Undo: both come back.
      await runAction('Undo Last Apply');
      await waitFor('the apply to be undone', () => !exists('added.txt') && read('notes.txt') === NOTES, 20000);
      await editor.toast(/Undid the apply of run .*: 2 files put back/).waitFor();

      // An edit of the same line: the apply changes nothing and names the file.
      fs.writeFileSync(path.join(workspace, 'notes.txt'), 'one\ntwo mine\nthree\n');
      await runAction('Apply to Working Tree');
      const conflict = editor.toast(/conflicts with your working tree in notes\.txt \(changed by edit\)\. Nothing was changed\./);
      await conflict.waitFor();
      await page.waitForTimeout(1000);
      await editor.shot('25-review-conflict');
      assert.equal(read('notes.txt'), 'one\ntwo mine\nthree\n');
      assert.equal(exists('added.txt'), false);
      await page.locator('.notifications-toasts .monaco-button', { hasText: 'Apply with conflict markers' }).first().click();
      await waitFor('conflict markers', () => (read('notes.txt') ?? '').includes('<<<<<<<') && exists('added.txt'), 20000);
      assert.match(read('notes.txt'), /two mine[\s\S]*=======[\s\S]*two changed/);

      // Discard: a modal lists what only the run's branches hold; then they are gone.
      await runAction('Discard Run');
      const dialog = page.locator('.monaco-dialog-box');
      await dialog.getByText(`Discard run ${runId}?`).waitFor();
      await dialog.getByText(/treeflow\/runs\/.*found nowhere else/).waitFor();
      await editor.shot('26-review-discard-modal');
      await dialog.getByRole('button', { name: 'Discard' }).click();
      await editor.toast(/discarded: 3 branches deleted/).waitFor();
      assert.equal(git('branch', '--list', 'treeflow/*'), '');
    })(),
);

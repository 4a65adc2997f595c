// A fresh install: no settings, no Python extension, only whatever Python is on PATH. The .vsix
// carries the language server, so a Python 3.11+ without treeflow runs workflows at once; a Python
// that cannot gets one notification saying why, and no restart loop.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { launch } from './editor.mjs';
import { waitFor } from './harness.mjs';

/**
 * A folder holding only `python3`, put first on code-server's PATH. The editor takes the PATH of
 * the user's login shell, whose profiles set their own; this user's shell has no profile.
 */
function pathWith(runDir, makePython) {
  const bin = path.join(runDir, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  makePython(path.join(bin, 'python3'));
  const shell = path.join(runDir, 'plain-shell');
  fs.writeFileSync(shell, '#!/bin/sh\n# Called as: SHELL -i -l -c COMMAND\nwhile [ $# -gt 1 ]; do shift; done\nexec /bin/sh -c "$1"\n');
  fs.chmodSync(shell, 0o755);
  return { PATH: `${bin}${path.delimiter}${process.env.PATH}`, SHELL: shell };
}

/** The extension's own log (the "Treeflow" output channel as written to disk). */
function channelLog(editor) {
  return editor
    .logs(/Treeflow\.log$/)
    .map(({ text }) => text)
    .join('\n');
}

function notifications(editor) {
  return editor.page.locator('.notifications-toasts .notification-toast');
}

test('a clean install runs a workflow from its code lens without a setting', { timeout: 150000 }, async () => {
  const editor = await launch('install-clean', {
    // The interpreter behind the venv: a plain Python 3.11 that has no treeflow installed.
    prepare: ({ runDir, python }) => ({
      python: null,
      env: pathWith(runDir, (file) => fs.symlinkSync(fs.realpathSync(python), file)),
    }),
  });
  try {
    await editor.step('install-clean', async () => {
      assert.equal(fs.readdirSync(path.join(editor.runDir, 'extensions')).filter((name) => name.startsWith('ms-python')).length, 0);
      await editor.page.locator('.explorer-folders-view').getByText('treeflow.yml', { exact: true }).click();
      const lens = editor.page.locator('.codelens-decoration a', { hasText: 'Run workflow' });
      await lens.waitFor({ timeout: 60000 });
      await lens.click();
      await editor.statusItem('check', /checks \d+\.\ds/).waitFor({ timeout: 60000 });
      await editor.shot('install-01-clean-run-from-code-lens');
      const log = channelLog(editor);
      assert.match(log, new RegExp(`${editor.runDir}/bin/python3 \\S+/treeflow_server\\.py \\[Python 3\\.\\d+\\.\\d+ from PATH, treeflow \\d`));
    })();
  } finally {
    await editor.close();
  }
});

test('a too-old python3, then a missing treeflow.python: one notification each, no restart loop', { timeout: 150000 }, async () => {
  const editor = await launch('install-old-python', {
    prepare: ({ runDir }) => ({
      python: null,
      // Answers as Python 3.8 does; anything it were asked to run would fail.
      env: pathWith(runDir, (file) => {
        fs.writeFileSync(file, '#!/bin/sh\nif [ "$1" = --version ]; then echo "Python 3.8.18"; exit 0; fi\necho "python 3.8 cannot run $1" >&2\nexit 1\n');
        fs.chmodSync(file, 0o755);
      }),
    }),
  });
  try {
    await editor.step('install-old-python', async () => {
      const { page } = editor;
      const tooOld = editor.toast(/needs Python 3\.11 or newer/);
      await tooOld.waitFor({ timeout: 60000 });
      const toast = notifications(editor).filter({ hasText: 'Python 3.8.18' });
      await toast.getByRole('button', { name: 'Select Interpreter' }).waitFor();
      await toast.getByRole('button', { name: 'Open Settings' }).waitFor();
      assert.match(await toast.innerText(), /python3 on PATH \(.*\/bin\/python3\) is Python 3\.8\.18/);
      await editor.shot('install-02-too-old-python');

      // The log says it once, with no client errors, stack traces or restarts around it.
      await waitFor('the log to say why', () => /needs Python 3\.11 or newer/.test(channelLog(editor)), 30000);
      const log = channelLog(editor);
      assert.equal(log.match(/needs Python 3\.11 or newer/g).length, 1, log);
      assert.doesNotMatch(log, /Starting the language server|Restarting|couldn't create connection|\n\s+at /);
      assert.equal(await notifications(editor).count(), 1, 'exactly one notification');

      // "Open Settings" opens the tab where treeflow.python belongs: code-server is a remote window.
      await toast.getByRole('button', { name: 'Open Settings' }).click();
      await page.locator('.settings-editor').waitFor();
      await page.locator('.settings-editor .setting-item-contents', { hasText: 'Python 3.11 or newer that runs' }).first().waitFor();
      const remoteTab = page.locator('.settings-editor .settings-tabs-widget .action-label', { hasText: /^Remote/ });
      await remoteTab.waitFor();
      const tabState = () => remoteTab.evaluate((el) => ({ html: el.outerHTML, on: el.classList.contains('checked') || el.getAttribute('aria-selected') === 'true' || el.getAttribute('aria-checked') === 'true' }));
      assert.ok((await tabState()).on, `the Remote tab is the one shown: ${(await tabState()).html}`);
      await editor.shot('install-03-open-settings-remote-tab');

      // A change of the setting restarts the server; a path that does not exist is named as such.
      const missing = path.join(editor.runDir, 'no-such-venv', 'bin', 'python');
      fs.writeFileSync(path.join(editor.runDir, 'user-data', 'Machine', 'settings.json'), JSON.stringify({ 'treeflow.python': missing }));
      const noSuchFile = notifications(editor).filter({ hasText: 'no such file' });
      await noSuchFile.waitFor({ timeout: 60000 });
      assert.match(await noSuchFile.innerText(), new RegExp(`"treeflow\\.python" \\(${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\): no such file`));
      await noSuchFile.getByRole('button', { name: 'Select Interpreter' }).waitFor();
      const viewport = page.viewportSize();
      await waitFor('the notification to finish sliding in', async () => {
        const box = await noSuchFile.boundingBox();
        return box !== null && box.y + box.height < viewport.height - 20;
      }, 10000);
      await editor.shot('install-04-missing-python');
      await waitFor('the log to name the missing path', () => /no such file/.test(channelLog(editor)), 30000);
      assert.doesNotMatch(channelLog(editor), /Starting the language server|Restarting|\n\s+at /);
    })();
  } finally {
    await editor.close();
  }
});

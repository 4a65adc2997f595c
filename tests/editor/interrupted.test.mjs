// A run whose `treeflow run` was killed with SIGKILL while a step ran, then the editor opened on the
// repository: its language server recovers the run as interrupted, and the extension shows it so.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { launch } from './editor.mjs';
import { isGone, runEnv, waitFor } from './harness.mjs';

let editor;
let stepPids = [];

/** Starts the long workflow from the CLI and kills the CLI once its step is running. */
async function interruptRun({ workspace, runDir, pidFile, python }) {
  const cli = spawn(python, ['-m', 'treeflow.cli', 'run', '.treeflow/long.yml'], {
    cwd: workspace,
    env: runEnv(runDir),
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => cli.once('exit', resolve));
  const recorded = () => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').trim().split(/\s+/);
  await waitFor('the step to record its pids', () => recorded()?.length === 2, 30000);
  stepPids = recorded().map(Number);
  cli.kill('SIGKILL');
  await exited;
}

before(async () => {
  editor = await launch('interrupted', { prepare: interruptRun });
});

after(async () => {
  await editor?.close();
});

test(
  'a run whose CLI was killed shows as interrupted in the runs view and the status bar',
  { timeout: 90000 },
  () =>
    editor.step('interrupted', async () => {
      const item = editor.statusItem('debug-disconnect', 'long interrupted');
      await item.waitFor();
      assert.equal(await item.evaluate((el) => el.classList.contains('error-kind')), false, 'no error colour');

      await item.click();
      await editor.sidebarRow(/long.*interrupted/).waitFor();
      await editor.sidebarRow(/^sleeper\s*interrupted/).waitFor();
      await editor.shot('16-interrupted');

      // Recovery ended the step that the killed CLI left running.
      await waitFor('the orphaned step to be ended', () => stepPids.every(isGone), 10000);

      const problems = editor
        .logs(/(Treeflow|exthost)\.log$/)
        .filter(({ text }) => /Could not list runs|TypeError|Cannot read properties/.test(text));
      assert.deepEqual(problems, [], 'the extension logs no exception');
    })(),
);

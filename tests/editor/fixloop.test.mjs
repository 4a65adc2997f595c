// A fix loop in the editor: the Runs view shows the step's round while its fixer works on top of
// the failed round, then the round it succeeded in, and its tooltip lists every round's branch.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launch } from './editor.mjs';
import { runEnv } from './harness.mjs';

let editor;
let goAhead;

async function addLoopWorkflow({ workspace, runDir }) {
  goAhead = path.join(runDir, 'fixer-may-go');
  fs.writeFileSync(
    path.join(workspace, '.treeflow', 'green.yml'),
    [
      'name: green',
      'steps:',
      '  test:',
      "    run: 'test -f fixed || { echo still broken; exit 1; }'",
      '    on_failure: {run_step: fix, max_rounds: 3}',
      '  fix:',
      `    run: 'while [ ! -f ${goAhead} ]; do sleep 0.1; done; touch fixed'`,
      '',
    ].join('\n'),
  );
  const gitEnv = runEnv(runDir);
  execFileSync('git', ['add', '-A'], { cwd: workspace, env: gitEnv, stdio: 'pipe' });
  execFileSync('git', ['commit', '--quiet', '-m', 'a fix loop'], { cwd: workspace, env: gitEnv, stdio: 'pipe' });
}

before(async () => {
  editor = await launch('fixloop', { prepare: addLoopWorkflow });
});

after(async () => {
  await editor?.close();
});

test('the runs view shows the rounds of a fix loop', { timeout: 120000 }, () =>
  editor.step('fixloop', async () => {
    await editor.runFromPalette('Treeflow: Run Workflow');
    await editor.pickRow('1 step: test').click(); // the fixer is no step of its own: it starts at once
    await editor.runFromPalette('Treeflow: Show Runs');

    const fixing = editor.sidebarRow(/^test\s*running · round 1 of 3 · fixing/);
    await fixing.waitFor({ timeout: 30000 });
    await editor.shot('60-fix-loop-fixing');
    fs.writeFileSync(goAhead, 'go\n');

    const done = editor.sidebarRow(/^test\s*succeeded · round 2 of 3 · [\d.]+s/);
    await done.waitFor({ timeout: 30000 });
    await editor.hoverUntil(
      done.locator('.label-name'),
      /round 1: failed, fixer fix succeeded \(treeflow\/.*\/test\.round-1\)/,
    );
    await editor.shot('61-fix-loop-rounds');
  })(),
);

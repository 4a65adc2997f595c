// A repository without a workflow: "Treeflow: Create Workflow" from the palette writes one from
// its Makefile and CI job and opens it, its code lens runs it to success, and the walkthrough
// opens. The screenshots create-*.png are the ones docs/images/ keeps for the README.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launch } from './editor.mjs';
import { runEnv, waitFor } from './harness.mjs';

let editor;

/** The workspace the harness makes, without its workflows, with a Makefile and a CI job instead. */
function withoutWorkflow({ workspace, runDir }) {
  fs.rmSync(path.join(workspace, 'treeflow.yml'));
  fs.rmSync(path.join(workspace, '.treeflow'), { recursive: true });
  fs.writeFileSync(
    path.join(workspace, 'Makefile'),
    ['lint:', '\t@echo linting', 'test:', '\t@echo tested > test-report.txt', 'build:', '\t@echo built', ''].join('\n'),
  );
  fs.mkdirSync(path.join(workspace, '.github', 'workflows'), { recursive: true });
  fs.writeFileSync(
    path.join(workspace, '.github', 'workflows', 'ci.yml'),
    ['on: push', 'jobs:', '  docs:', '    runs-on: ubuntu-latest', '    steps:', '      - uses: actions/checkout@v4',
      '      - run: grep -q e2e README.md', ''].join('\n'),
  );
  const git = (...args) => execFileSync('git', args, { cwd: workspace, env: runEnv(runDir), stdio: 'pipe' });
  git('add', '-A');
  git('commit', '--quiet', '-m', 'a Makefile and a CI job, no workflow');
}

before(async () => {
  editor = await launch('create', { prepare: withoutWorkflow, shows: 'Makefile' });
});

after(async () => {
  await editor?.close();
});

const step = (name, fn) => () => editor.step(name, fn)();

test(
  'creates a workflow from the palette and runs it from its code lens',
  { timeout: 120000 },
  step('create', async () => {
    const { page } = editor;
    await editor.runFromPalette('Treeflow: Create Workflow');
    await page.locator('.tabs-container .tab', { hasText: 'treeflow.yml' }).waitFor({ timeout: 60000 });
    await page.locator('.editor-instance .view-lines', { hasText: 'make build' }).first().waitFor();
    await editor.toast(/wrote treeflow\.yml, 4 steps from Makefile, \.github\/workflows/).waitFor();
    const lens = page.locator('.codelens-decoration a', { hasText: 'Run workflow' });
    await lens.waitFor({ timeout: 60000 });
    await editor.shot('create-1-workflow');

    // The lens's command is the server's treeflow.run, which the language client registers.
    await lens.click();
    await editor.statusItem('check', /checks \d+\.\ds/).waitFor({ timeout: 60000 });
    await editor.runFromPalette('Treeflow: Show Runs');
    await editor.sidebarRow(/checks.*succeeded in/).waitFor();
    for (const stepId of ['lint', 'test', 'build', 'docs']) {
      await editor.sidebarRow(new RegExp(`^${stepId}\\s*succeeded`)).waitFor();
    }
    await editor.shot('create-2-run');
  }),
);

test(
  'the walkthrough opens from the palette',
  { timeout: 60000 },
  step('walkthrough', async () => {
    const { page } = editor;
    await editor.runFromPalette('Treeflow: Get Started');
    const walkthrough = page.locator('.gettingStartedContainer');
    await walkthrough.getByText('Get started with Treeflow').first().waitFor();
    for (const title of ['Create a workflow', 'Run it', 'Watch the Runs view', 'Review and apply the result']) {
      await walkthrough.getByText(title, { exact: true }).first().waitFor();
    }
    // The selected step's Markdown (editor-client/media/walkthrough/create.md) renders in a webview.
    await waitFor(
      "the first step's Markdown",
      async () => {
        for (const frame of page.frames()) {
          const text = await frame.evaluate(() => document.body?.innerText ?? '').catch(() => '');
          if (text.includes('An existing workflow is never overwritten')) {
            return true;
          }
        }
        return false;
      },
      30000,
    );
    await editor.shot('create-3-walkthrough');
  }),
);

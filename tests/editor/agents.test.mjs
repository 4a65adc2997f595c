// An agent CLI step in the editor: a fake `claude` replays Claude Code's recorded stream, pausing
// after its first tool call; the Runs view shows that call with the tokens so far, the finished
// step its totals. "Open Agent Transcript", opened while the step runs, shows the step's log as a
// read-only Markdown document that follows the step to its end and closes without asking to save.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launch } from './editor.mjs';
import { runEnv } from './harness.mjs';

const FAKE_CLIS = path.resolve(import.meta.dirname, '..', 'agents', 'fake_clis');

let editor;

/** The recorded success stream with a pause after the Bash call, long enough to be seen running. */
function writePausedStream(streams) {
  const lines = fs.readFileSync(path.join(FAKE_CLIS, 'streams', 'claude', 'success.jsonl'), 'utf8').split('\n');
  const call = lines.findIndex((line) => line.includes('"name":"Bash"'));
  assert.ok(call > 0, 'the recorded stream has a Bash call');
  lines.splice(call + 1, 0, '!sleep 15');
  fs.mkdirSync(path.join(streams, 'claude'), { recursive: true });
  fs.writeFileSync(path.join(streams, 'claude', 'paused.jsonl'), lines.join('\n'));
}

async function addAgentWorkflow({ workspace, runDir }) {
  const streams = path.join(runDir, 'streams');
  writePausedStream(streams);
  const env = JSON.stringify({ FAKE_AGENT_SCENARIO: 'paused', FAKE_AGENT_STREAMS: streams });
  fs.writeFileSync(
    path.join(workspace, '.treeflow', 'agents.yml'),
    [
      'name: agents',
      `env: ${env}`,
      'steps:',
      `  fix: {agent: {use: claude, prompt: "Make the failing test pass", program: ${JSON.stringify(path.join(FAKE_CLIS, 'claude'))}}}`,
      '',
    ].join('\n'),
  );
  const gitEnv = runEnv(runDir);
  execFileSync('git', ['add', '-A'], { cwd: workspace, env: gitEnv, stdio: 'pipe' });
  execFileSync('git', ['commit', '--quiet', '-m', 'an agent workflow'], { cwd: workspace, env: gitEnv, stdio: 'pipe' });
}

before(async () => {
  editor = await launch('agents', { prepare: addAgentWorkflow });
});

after(async () => {
  await editor?.close();
});

test(
  "an agent step shows its action and tokens in the runs view, and its transcript opens as Markdown",
  { timeout: 120000 },
  () =>
    editor.step('agents', async () => {
      const { page } = editor;
      await editor.runFromPalette('Treeflow: Run Workflow');
      await editor.pickRow('1 step: fix').click(); // one step: no step picker, it starts at once
      await editor.runFromPalette('Treeflow: Show Runs');

      const running = editor.sidebarRow(/^fix\s*running · Bash: pytest -q tests\/test_api\.py · 1 turn · 14\.3k tokens/);
      await running.waitFor({ timeout: 30000 });
      await editor.shot('40-agent-running');

      // Opened while the agent waits for its tool: the transcript so far, in a document of its own.
      await running.hover();
      await running.locator('.actions .action-label[aria-label*="Open Agent Transcript"]').click();
      await page.locator('.tabs-container .tab', { hasText: 'fix transcript.md' }).first().waitFor({ timeout: 30000 });
      await page.locator('.tabs-container .tab', { hasText: /Preview fix transcript\.md/ }).waitFor({ timeout: 30000 });
      assert.equal(await page.locator('.tabs-container .tab', { hasText: /Untitled/ }).count(), 0);
      const preview = page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');
      await preview.getByText('fix: Claude Code').waitFor({ timeout: 30000 });
      await preview.getByText('→ Bash: pytest -q tests/test_api.py').waitFor();
      await preview.getByText(/none reported \(yet\)/).waitFor();
      await editor.shot('41-agent-transcript-running');

      const done = editor.sidebarRow(/^fix\s*succeeded · [\d.]+s · 5 turns · 43\.8k tokens · \$0\.0412/);
      await done.waitFor({ timeout: 30000 });
      await editor.hoverUntil(done.locator('.label-name'), /last message:/);
      await editor.shot('42-agent-tooltip');

      // The same preview, read again as the step went on: the tool's result and the totals are there.
      await preview.getByText(/Totals: 5 turns/).waitFor({ timeout: 30000 });
      await preview.getByText('1 failed in 0.02s').waitFor();
      await preview.getByText(/Result: succeeded/).waitFor();
      assert.equal(await preview.getByText('"type"').count(), 0, 'no raw JSON in the transcript');
      await editor.shot('43-agent-transcript');

      // Read-only, so nothing to save: closing every editor asks nothing.
      await editor.runFromPalette('View: Close All Editors');
      await page.locator('.tabs-container .tab').first().waitFor({ state: 'detached', timeout: 10000 });
      assert.equal(await page.locator('.monaco-dialog-box').count(), 0, 'no question on closing');

      // Opened again, it is the whole transcript at once.
      await done.locator('.actions .action-label[aria-label*="Open Agent Transcript"]').click();
      await preview.getByText(/Totals: 5 turns/).waitFor({ timeout: 30000 });
    })(),
);

// The editor under test: a git repository to open, code-server with the packed extension, and a
// headless Chromium page on it. Everything lives under one folder that each run starts afresh.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { chromium } from 'playwright-core';

const GIT_IDENTITY = {
  GIT_AUTHOR_NAME: 'treeflow e2e',
  GIT_AUTHOR_EMAIL: 'e2e@treeflow.invalid',
  GIT_COMMITTER_NAME: 'treeflow e2e',
  GIT_COMMITTER_EMAIL: 'e2e@treeflow.invalid',
};

/** A repository with a quick workflow (treeflow.yml), a long one and a failing one (.treeflow/). */
export function createWorkspace(dir, pidFile) {
  fs.mkdirSync(path.join(dir, '.treeflow'), { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'treeflow.yml'),
    [
      'name: checks',
      'steps:',
      '  lint: {run: "echo linting; sleep 2"}',
      '  unit: {run: "echo testing; sleep 3"}',
      '  build: {run: "echo built > build.txt; sleep 1", needs: [lint, unit]}',
      '',
    ].join('\n'),
  );
  // The step records its shell's pid and a background child's, to check that cancelling kills both.
  fs.writeFileSync(
    path.join(dir, '.treeflow', 'long.yml'),
    ['name: long', 'steps:', `  sleeper: {run: 'sleep 61 & echo "$! $$" > ${pidFile}; wait'}`, ''].join('\n'),
  );
  fs.writeFileSync(
    path.join(dir, '.treeflow', 'broken.yml'),
    ['name: broken', 'steps:', '  fine: {run: "true"}', '  oops: {run: "echo about to fail; exit 3", needs: [fine]}', ''].join('\n'),
  );
  fs.writeFileSync(path.join(dir, 'README.md'), '# e2e workspace\n');
  const git = (...args) => execFileSync('git', args, { cwd: dir, env: { ...process.env, ...GIT_IDENTITY }, stdio: 'pipe' });
  git('init', '--quiet', '--initial-branch=main');
  git('add', '-A');
  git('commit', '--quiet', '-m', 'e2e workspace');
}

/**
 * Settings of a quiet editor. In code-server the machine is the remote side, so `treeflow.python`
 * goes into the remote ("Machine") settings as a user would put it there; `python: null` leaves it
 * unset, as in a fresh install.
 */
function writeSettings(userDataDir, python, trusted) {
  const user = {
    // Untrusted: Restricted Mode at once, without the modal that asks.
    'security.workspace.trust.enabled': !trusted,
    'security.workspace.trust.startupPrompt': 'never',
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'telemetry.telemetryLevel': 'off',
    'extensions.autoUpdate': false,
    'extensions.autoCheckUpdates': false,
    'extensions.ignoreRecommendations': true,
    'update.mode': 'none',
    'chat.disableAIFeatures': true,
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    // The built-in git extension would scan the repository while runs add worktrees and branches.
    'git.enabled': false,
  };
  const machine = python === null ? {} : { 'treeflow.python': python };
  for (const [scope, settings] of [['User', user], ['Machine', machine]]) {
    fs.mkdirSync(path.join(userDataDir, scope), { recursive: true });
    fs.writeFileSync(path.join(userDataDir, scope, 'settings.json'), JSON.stringify(settings, null, 2));
  }
}

async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitFor(what, check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) {
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The environment of code-server and of anything else a test runs in `runDir`'s workspace. */
export function runEnv(runDir) {
  return {
    ...process.env,
    ...GIT_IDENTITY,
    // Keep code-server's, the server's and treeflow's state out of $HOME.
    XDG_CONFIG_HOME: path.join(runDir, 'xdg', 'config'),
    XDG_DATA_HOME: path.join(runDir, 'xdg', 'data'),
    XDG_CACHE_HOME: path.join(runDir, 'xdg', 'cache'),
    XDG_STATE_HOME: path.join(runDir, 'xdg', 'state'),
    TREEFLOW_WORKTREE_ROOT: path.join(runDir, 'worktrees'),
  };
}

/**
 * Starts code-server in its own process group with the extension installed, and records the
 * group in `<runDir>/code-server.pgid` so that the calling script can kill it whatever happens here.
 */
export async function startCodeServer({ codeServer, vsix, python, runDir, workspace, trusted = true, env: extraEnv = {} }) {
  const env = { ...runEnv(runDir), ...extraEnv };
  const common = ['--user-data-dir', path.join(runDir, 'user-data'), '--extensions-dir', path.join(runDir, 'extensions')];
  writeSettings(path.join(runDir, 'user-data'), python, trusted);
  // code-server's launcher is a node script; run it with this node (the Node 24 it was built for).
  const launcher = fs.realpathSync(codeServer);
  execFileSync(process.execPath, [launcher, ...common, '--install-extension', vsix], { env, stdio: 'pipe', timeout: 60000 });
  const port = await freePort();
  const log = fs.openSync(path.join(runDir, 'code-server.log'), 'w');
  const child = spawn(
    process.execPath,
    [
      launcher, ...common, '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none', '--disable-telemetry',
      '--disable-update-check', '--disable-getting-started-override', ...(trusted ? ['--disable-workspace-trust'] : []),
      '--config', path.join(runDir, 'config.yaml'), workspace,
    ],
    { env, detached: true, stdio: ['ignore', log, log] },
  );
  fs.writeFileSync(path.join(runDir, 'code-server.pgid'), String(child.pid));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await waitFor(
    'code-server to answer /healthz',
    async () => {
      if (child.exitCode !== null) {
        throw new Error(`code-server exited with ${child.exitCode}; see ${runDir}/code-server.log`);
      }
      return fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false);
    },
    60000,
  );
  return {
    url: `http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`,
    /** SIGTERM first so that the extension can stop the language server, which ends its runs. */
    async stop() {
      if (child.exitCode !== null) {
        return;
      }
      try {
        process.kill(child.pid, 'SIGTERM');
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    },
  };
}

export async function openEditor(url, runDir) {
  const profile = path.join(runDir, 'chromium-profile');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1400, height: 900 },
    // Chromium writes crash reports and dconf under $HOME unless told otherwise.
    env: { ...process.env, XDG_CONFIG_HOME: path.join(runDir, 'xdg', 'chromium-config'), XDG_CACHE_HOME: path.join(runDir, 'xdg', 'chromium-cache') },
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(30000);
  await page.goto(url);
  await page.locator('.monaco-workbench').waitFor({ timeout: 60000 });
  return { context, page };
}

/** True when no process `pid` is left, counting an unreaped zombie as gone. */
export function isGone(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

export { waitFor };

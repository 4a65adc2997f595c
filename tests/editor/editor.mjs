// One editor session for a test file: a fresh workspace, code-server with the packed extension,
// and helpers that find things the way a person would, by what they say.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createWorkspace, openEditor, startCodeServer } from './harness.mjs';

const root = path.resolve(import.meta.dirname, '..', '..');
const lab = process.env.EDITOR_TEST_DIR ?? path.join(root, '.editor-test');
const shots = process.env.EDITOR_TEST_SHOTS ?? path.join(root, 'test-artifacts', 'editor');

/**
 * Starts an editor on a new workspace under `<lab>/run/<name>/`; `trusted: false` opens it in
 * Restricted Mode. `prepare({ workspace, runDir, pidFile, python })` runs before the editor starts,
 * and may return `{ python, env }`: the `treeflow.python` to set (null: none) and environment
 * variables for code-server. `shows` is a file of the workspace the explorer lists once the
 * workbench has loaded it.
 */
export async function launch(name, { trusted = true, prepare, shows = 'treeflow.yml' } = {}) {
  const vsix = process.env.TREEFLOW_VSIX;
  assert.ok(vsix && fs.existsSync(vsix), 'TREEFLOW_VSIX must name the packed extension');
  const runDir = path.join(lab, 'run', name);
  const workspace = path.join(runDir, 'workspace');
  const pidFile = path.join(runDir, 'long.pids');
  fs.rmSync(runDir, { recursive: true, force: true });
  fs.mkdirSync(workspace, { recursive: true });
  fs.mkdirSync(shots, { recursive: true });
  createWorkspace(workspace, pidFile);
  const python = process.env.TREEFLOW_PYTHON ?? path.join(root, '.venv', 'bin', 'python');
  const prepared = (await prepare?.({ workspace, runDir, pidFile, python })) ?? {};
  const server = await startCodeServer({
    codeServer: path.join(lab, 'code-server', 'bin', 'code-server'),
    vsix,
    python: prepared.python === undefined ? python : prepared.python,
    runDir,
    workspace,
    trusted,
    env: prepared.env ?? {},
  });
  const { page } = await openEditor(server.url, runDir);
  const editor = new Editor(page, server, pidFile, runDir);
  // The explorer lists the workspace once the workbench has loaded it; the Treeflow icon in the
  // activity bar shows that the extension's contributions (and so its commands) are registered.
  await page.locator('.explorer-folders-view').getByText(shows, { exact: true }).waitFor({ timeout: 60000 });
  await page.locator('.part.activitybar [aria-label^="Treeflow"]').first().waitFor({ timeout: 60000 });
  return editor;
}

export class Editor {
  constructor(page, server, pidFile, runDir) {
    this.page = page;
    this.server = server;
    this.pidFile = pidFile;
    this.runDir = runDir;
  }

  /** The text of every log file of this editor whose path matches `pattern`. */
  logs(pattern) {
    const dir = path.join(this.runDir, 'user-data', 'logs');
    const files = fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true }).map(String) : [];
    return files
      .filter((file) => pattern.test(file) && fs.statSync(path.join(dir, file)).isFile())
      .map((file) => ({ file, text: fs.readFileSync(path.join(dir, file), 'utf8') }));
  }

  async close() {
    await this.page.context().close().catch(() => {});
    await this.server.stop();
  }

  async shot(name) {
    await this.page.screenshot({ path: path.join(shots, `${name}.png`) });
  }

  /** A test body that keeps a screenshot of what the editor showed when it failed. */
  step(name, fn) {
    return async () => {
      try {
        await fn();
      } catch (error) {
        await this.shot(`fail-${name}`).catch(() => {});
        throw error;
      }
    };
  }

  statusBar() {
    return this.page.locator('.part.statusbar');
  }

  /** A status bar item, by its codicon and its text. */
  statusItem(icon, text) {
    return this.statusBar().locator('.statusbar-item', { has: this.page.locator(`.codicon-${icon}`), hasText: text });
  }

  quickInput() {
    return this.page.locator('.quick-input-widget');
  }

  pickRow(text) {
    return this.quickInput().locator('.monaco-list-row', { hasText: text }).first();
  }

  sidebarRow(text) {
    return this.page.locator('.part.sidebar .monaco-list-row', { hasText: text }).first();
  }

  /** A hover, by the text it shows: one of the editor's own or a tree item's tooltip. */
  hover(text) {
    return this.page.locator('.monaco-hover, .workbench-hover').getByText(text).first();
  }

  /**
   * Hovers `target` until the hover showing `text` is visible. A hover opens when the pointer comes
   * onto an element, and one can be lost while the tree redraws, so the pointer leaves and comes back.
   */
  async hoverUntil(target, text) {
    const shown = this.hover(text);
    for (let tries = 1; ; tries++) {
      await this.page.mouse.move(0, 0);
      await target.hover();
      try {
        await shown.waitFor({ timeout: 5000 });
        break;
      } catch (error) {
        if (tries === 3) {
          throw error;
        }
      }
    }
    await this.page.waitForTimeout(500); // the hover fades in before a screenshot shows it whole
  }

  toast(text) {
    return this.page.locator('.notifications-toasts').getByText(text).first();
  }

  async runFromPalette(title) {
    const { page } = this;
    // The palette lists the commands known when it opens; if the extension's came later, reopen it.
    for (let attempt = 1; ; attempt++) {
      await page.keyboard.press('F1');
      const input = this.quickInput().locator('input');
      await input.waitFor({ state: 'visible' });
      await input.fill(`>${title}`);
      try {
        await this.pickRow(title).waitFor({ timeout: 5000 });
        break;
      } catch (error) {
        if (attempt === 3) {
          throw error;
        }
        await page.keyboard.press('Escape');
      }
    }
    await page.keyboard.press('Enter');
  }
}

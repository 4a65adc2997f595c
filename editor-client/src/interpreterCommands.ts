// What a user meets when no interpreter can start the server: one notification that says why,
// "Select Interpreter" (a pick of the Pythons found, or a path) and "Open Settings" in the tab
// where `treeflow.python` belongs in this window.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { findOnPath, isUsable, probe } from './probe';
import { configuredPython } from './settings';

const SELECT = 'Select Interpreter';
const OPEN_SETTINGS = 'Open Settings';

export async function showStartProblem(message: string, entryScript: string): Promise<void> {
  const choice = await vscode.window.showErrorMessage(message, SELECT, OPEN_SETTINGS);
  if (choice === SELECT) {
    await selectInterpreter(entryScript);
  } else if (choice === OPEN_SETTINGS) {
    await openPythonSetting();
  }
}

/** In a remote window (code-server, SSH, WSL, containers) the server runs there: its settings tab. */
export async function openPythonSetting(): Promise<void> {
  if (vscode.env.remoteName) {
    await vscode.commands.executeCommand('workbench.action.openRemoteSettings', { query: 'treeflow.python' });
  } else {
    await vscode.commands.executeCommand('workbench.action.openSettings', 'treeflow.python');
  }
}

interface InterpreterPick extends vscode.QuickPickItem {
  path?: string;
  action?: 'browse' | 'python-extension';
}

/** Interpreters worth offering: the workspace's venvs, then versioned and plain pythons on PATH. */
function lookAround(): string[] {
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const venvs = folder
    ? ['.venv', 'venv', 'env'].map((name) => path.join(folder, name, 'bin', 'python')).filter((file) => fs.existsSync(file))
    : [];
  const onPath = ['python3.14', 'python3.13', 'python3.12', 'python3.11', 'python3', 'python']
    .map((name) => findOnPath(name))
    .filter((file): file is string => file !== undefined);
  const seen = new Set<string>();
  return [...venvs, ...onPath].filter((file) => {
    const real = fs.realpathSync(file);
    return seen.has(real) ? false : (seen.add(real), true);
  });
}

export async function selectInterpreter(entryScript: string): Promise<void> {
  const pick = vscode.window.createQuickPick<InterpreterPick>();
  pick.title = 'Treeflow: Select Interpreter (Python 3.11 or newer)';
  pick.placeholder = 'Looking for Python interpreters…';
  pick.busy = true;
  pick.show();
  const actions: InterpreterPick[] = [{ label: '$(folder-opened) Browse…', action: 'browse' }];
  if (vscode.extensions.getExtension('ms-python.python') && !configuredPython()) {
    actions.push({ label: '$(python) Select in the Python extension…', action: 'python-extension' });
  }
  const found = await Promise.all(lookAround().map(async (file) => ({ file, result: await probe(file, entryScript) })));
  const usable: InterpreterPick[] = found.flatMap(({ file, result }) =>
    isUsable(result) ? [{ label: `Python ${result.version}`, description: file, path: file }] : [],
  );
  pick.items = [...usable, ...actions];
  pick.busy = false;
  pick.placeholder = usable.length ? 'Choose the Python that runs treeflow' : 'No Python 3.11 or newer found here: browse for one';
  const chosen = await new Promise<InterpreterPick | undefined>((resolve) => {
    pick.onDidAccept(() => resolve(pick.selectedItems[0]));
    pick.onDidHide(() => resolve(undefined));
  });
  pick.dispose();
  if (chosen?.action === 'python-extension') {
    await vscode.commands.executeCommand('python.setInterpreter');
    return;
  }
  const file = chosen?.action === 'browse' ? await browse() : chosen?.path;
  if (file) {
    await savePython(file);
  }
}

async function browse(): Promise<string | undefined> {
  const chosen = await vscode.window.showOpenDialog({ canSelectMany: false, openLabel: 'Use this Python', title: 'Python interpreter' });
  return chosen?.[0]?.fsPath;
}

/** Where the setting has a value already, else User settings; the change restarts the server. */
async function savePython(file: string): Promise<void> {
  const config = vscode.workspace.getConfiguration('treeflow');
  if (config.get<string>('python') === file) {
    // No change event would come: start again with it all the same, as the user asked.
    await vscode.commands.executeCommand('treeflow.restartServer');
    return;
  }
  const inWorkspace = config.inspect<string>('python')?.workspaceValue !== undefined;
  await config.update('python', file, inWorkspace ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global);
}

export function registerInterpreterCommands(entryScript: string): vscode.Disposable[] {
  return [vscode.commands.registerCommand('treeflow.selectInterpreter', () => selectInterpreter(entryScript))];
}

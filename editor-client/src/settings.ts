// The extension's settings, and which interpreter starts the server.
import * as os from 'node:os';
import * as vscode from 'vscode';
import { activeInterpreter } from './python';

const SECTION = 'treeflow';

export interface ServerCommand {
  command: string;
  args: string[];
  /** Where the interpreter came from, for the log. */
  source: string;
}

/** `treeflow.python` with `~` and `${workspaceFolder}` expanded; '' means "find one". */
export function configuredPython(): string {
  const value = vscode.workspace.getConfiguration(SECTION).get<string>('python', '').trim();
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? '';
  return value
    .replace(/^~(?=\/|$)/, os.homedir())
    .replace(/\$\{workspaceFolder\}/g, folder);
}

export function affectsServer(event: vscode.ConfigurationChangeEvent): boolean {
  return event.affectsConfiguration(`${SECTION}.python`);
}

/** The setting, else the Python extension's selected interpreter, else `python3` on PATH. */
export async function serverCommand(): Promise<ServerCommand> {
  const args = ['-m', 'treeflow.cli', 'serve'];
  const configured = configuredPython();
  if (configured) {
    return { command: configured, args, source: 'setting treeflow.python' };
  }
  const selected = await activeInterpreter(vscode.workspace.workspaceFolders?.[0]?.uri);
  if (selected) {
    return { command: selected, args, source: 'the Python extension' };
  }
  return { command: 'python3', args, source: 'default' };
}

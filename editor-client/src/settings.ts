// The extension's settings, and which interpreter starts the server.
import * as os from 'node:os';
import * as vscode from 'vscode';
import type { Candidate, Tried } from './interpreter';
import { findOnPath, isUsable, probe } from './probe';
import { activeInterpreter } from './python';

const SECTION = 'treeflow';

export interface ServerCommand {
  command: string;
  args: string[];
  /** Where the interpreter came from and what it is, for the log. */
  description: string;
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

/** A bare name (`python3.12`) is looked up on PATH, as a shell would. */
function resolved(command: string, source: Candidate['source']): Candidate {
  const isName = !command.includes('/') && !command.includes('\\');
  return { command: isName ? (findOnPath(command) ?? command) : command, source };
}

/**
 * The setting, which is final when set; else the Python extension's interpreter, then `python3`
 * on PATH, the first that can run the bundled server.
 */
async function candidates(): Promise<Candidate[]> {
  const configured = configuredPython();
  if (configured) {
    return [resolved(configured, 'setting')];
  }
  const found: Candidate[] = [];
  const selected = await activeInterpreter(vscode.workspace.workspaceFolders?.[0]?.uri);
  if (selected) {
    found.push({ command: selected, source: 'python-extension' });
  }
  found.push(resolved('python3', 'path'));
  return found;
}

/** How to start the server, or every interpreter tried and why it could not. */
export async function serverCommand(entryScript: string): Promise<ServerCommand | { tried: Tried[] }> {
  const tried: Tried[] = [];
  for (const candidate of await candidates()) {
    const isBareName = candidate.source === 'path' && !candidate.command.includes('/');
    if (isBareName) {
      tried.push({ candidate, problem: { kind: 'not-on-path' } });
      continue;
    }
    const result = await probe(candidate.command, entryScript);
    if (isUsable(result)) {
      const from = { setting: 'setting treeflow.python', 'python-extension': 'the Python extension', path: 'PATH' }[
        candidate.source
      ];
      return {
        command: candidate.command,
        args: [entryScript],
        description: `Python ${result.version} from ${from}, treeflow ${result.treeflow}`,
      };
    }
    tried.push({ candidate, problem: result });
  }
  return { tried };
}

// "Treeflow: Create Workflow": the server writes a starter treeflow.yml into a workspace folder;
// the editor opens it, where its "Run workflow" code lens runs it.
import * as vscode from 'vscode';
import type { CommandContext } from './commands';
import { ensureTrusted } from './runCommands';
import { createdMessage } from './starterText';

export async function createWorkflow(ctx: CommandContext): Promise<void> {
  // The server, which reads the repository, starts only in a trusted workspace; and what comes
  // next is a run.
  if (!(await ensureTrusted('creates workflows'))) {
    return;
  }
  const folder = await pickFolder();
  if (!folder) {
    return;
  }
  const created = await ctx.server.execute('treeflow.initWorkflow', { folder: folder.uri.toString() });
  const document = await vscode.workspace.openTextDocument(vscode.Uri.parse(created.uri));
  await vscode.window.showTextDocument(document);
  ctx.channel.info(createdMessage(created));
  void vscode.window.showInformationMessage(`Treeflow: ${createdMessage(created)}`);
}

async function pickFolder(): Promise<vscode.WorkspaceFolder | undefined> {
  const folders = vscode.workspace.workspaceFolders ?? [];
  if (folders.length <= 1) {
    if (!folders.length) {
      void vscode.window.showInformationMessage('Treeflow: open a folder first; the workflow goes into it.');
    }
    return folders[0];
  }
  return vscode.window.showWorkspaceFolderPick({ placeHolder: 'Folder to create treeflow.yml in' });
}

// The one language client of `treeflow serve`: start, stop, restart, and calls to its commands.
import * as vscode from 'vscode';
import {
  ExecuteCommandRequest,
  LanguageClient,
  RevealOutputChannelOn,
  State,
  type LanguageClientOptions,
  type ServerOptions,
} from 'vscode-languageclient/node';
import { LOG, RUN_UPDATED, type LogParams, type RunUpdatedParams, type ServerCommands } from './protocol';
import { serverCommand } from './settings';

// The server gives its runs 5 s to stop; leave room for cleaning up their worktrees after that.
const SHUTDOWN_TIMEOUT_MS = 8000;

export interface ServerEvents {
  started(): void;
  runUpdated(params: RunUpdatedParams): void;
  log(params: LogParams): void;
}

export class ServerClient implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private subscriptions: vscode.Disposable[] = [];
  /** Restarts and stops run one after another, never overlapping. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly channel: vscode.LogOutputChannel,
    private readonly events: ServerEvents,
  ) {}

  restart(reason: string): Promise<void> {
    this.queue = this.queue.then(() => this.doRestart(reason)).catch((error) => this.fail('start', error));
    return this.queue;
  }

  stop(): Promise<void> {
    this.queue = this.queue.then(() => this.doStop()).catch((error) => this.fail('stop', error));
    return this.queue;
  }

  dispose(): void {
    void this.stop();
  }

  /** Calls a server command once the server is up; rejects with a readable message otherwise. */
  async execute<K extends keyof ServerCommands>(command: K, arg?: ServerCommands[K][0]): Promise<ServerCommands[K][1]> {
    await this.queue;
    const client = this.client;
    if (!client?.isRunning()) {
      throw new Error('The treeflow language server is not running (see "Treeflow: Show Output").');
    }
    const result: unknown = await client.sendRequest(ExecuteCommandRequest.type, {
      command,
      arguments: arg === undefined ? [] : [arg],
    });
    return result as ServerCommands[K][1];
  }

  private async doRestart(reason: string): Promise<void> {
    await this.doStop();
    if (!vscode.workspace.isTrusted) {
      this.channel.info('Not starting the language server: this workspace is not trusted.');
      return;
    }
    const { command, args, source } = await serverCommand();
    this.channel.info(`Starting the language server (${reason}): ${command} ${args.join(' ')} [python from ${source}]`);
    const client = new LanguageClient('treeflow', 'Treeflow', serverOptions(command, args), this.clientOptions());
    this.subscriptions.push(
      client.onNotification(RUN_UPDATED, (params: RunUpdatedParams) => this.events.runUpdated(params)),
      client.onNotification(LOG, (params: LogParams) => this.events.log(params)),
      // Also after the client restarts a crashed server by itself.
      client.onDidChangeState(({ newState }) => {
        if (newState === State.Running) {
          this.events.started();
        }
      }),
    );
    this.client = client;
    try {
      await client.start();
    } catch (error) {
      this.channel.error(`The language server did not start: ${String(error)}`);
      void this.explainStartFailure(command);
    }
  }

  private async explainStartFailure(command: string): Promise<void> {
    const choice = await vscode.window.showErrorMessage(
      `Treeflow could not start its language server with ${command}. Is treeflow installed for that Python? Set "treeflow.python" to one that has it.`,
      'Open Settings',
      'Show Output',
    );
    if (choice === 'Open Settings') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'treeflow.python');
    } else if (choice === 'Show Output') {
      this.channel.show();
    }
  }

  private async doStop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    for (const subscription of this.subscriptions.splice(0)) {
      subscription.dispose();
    }
    if (!client) {
      return;
    }
    try {
      // The server cancels its runs and cleans up their worktrees on shutdown; give it that time.
      await client.dispose(SHUTDOWN_TIMEOUT_MS);
    } catch (error) {
      this.channel.warn(`Stopping the language server: ${String(error)}`);
    }
  }

  private fail(what: string, error: unknown): void {
    this.channel.error(`Could not ${what} the language server: ${String(error)}`);
  }

  private clientOptions(): LanguageClientOptions {
    return {
      documentSelector: [
        { scheme: 'file', pattern: '**/treeflow.{yml,yaml}' },
        { scheme: 'file', pattern: '**/.treeflow/*.{yml,yaml}' },
      ],
      outputChannel: this.channel,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
    };
  }
}

function serverOptions(command: string, args: string[]): ServerOptions {
  const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  // No `transport`: the client would append `--stdio`, which `treeflow serve` does not take.
  return cwd ? { command, args, options: { cwd } } : { command, args };
}

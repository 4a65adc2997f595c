// The one language client of `treeflow serve`: start, stop, restart, and calls to its commands.
import * as vscode from 'vscode';
import {
  CloseAction,
  ExecuteCommandRequest,
  LanguageClient,
  RevealOutputChannelOn,
  State,
  type ErrorHandler,
  type LanguageClientOptions,
  type ServerOptions,
} from 'vscode-languageclient/node';
import { describeProblems } from './interpreter';
import { showStartProblem } from './interpreterCommands';
import {
  LOG,
  RUN_UPDATED,
  type InitializationOptions,
  type LogParams,
  type RunArgs,
  type RunStarted,
  type RunUpdatedParams,
  type ServerCommands,
} from './protocol';
import { serverCommand } from './settings';

// The server gives its runs 5 s to stop; leave room for cleaning up their worktrees after that.
const SHUTDOWN_TIMEOUT_MS = 8000;

export interface ServerEvents {
  started(): void;
  runUpdated(params: RunUpdatedParams): void;
  log(params: LogParams): void;
  /** A run the editor started through the server's own command (a code lens). */
  runStarted(args: RunArgs, started: RunStarted): void;
}

export class ServerClient implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private subscriptions: vscode.Disposable[] = [];
  /** Restarts and stops run one after another, never overlapping. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly channel: vscode.LogOutputChannel,
    private readonly events: ServerEvents,
    /** The bundled `treeflow_server.py` the interpreter runs. */
    private readonly entryScript: string,
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
    const found = await serverCommand(this.entryScript);
    if ('tried' in found) {
      // Checked before the language client exists: it would restart a server that cannot start,
      // and show a notification for each try.
      const message = describeProblems(found.tried);
      this.channel.error(message);
      void showStartProblem(message, this.entryScript);
      return;
    }
    const { command, args, description } = found;
    this.channel.info(`Starting the language server (${reason}): ${command} ${args.join(' ')} [${description}]`);
    let ran = false;
    const client: LanguageClient = new LanguageClient(
      'treeflow',
      'Treeflow',
      serverOptions(command, args),
      this.clientOptions(() => ran, () => client),
    );
    this.subscriptions.push(
      client.onNotification(RUN_UPDATED, (params: RunUpdatedParams) => this.events.runUpdated(params)),
      client.onNotification(LOG, (params: LogParams) => this.events.log(params)),
      // Also after the client restarts a crashed server by itself.
      client.onDidChangeState(({ newState }) => {
        if (newState === State.Running) {
          ran = true;
          this.events.started();
        }
      }),
    );
    this.client = client;
    try {
      await client.start();
    } catch (error) {
      // The client has shown its own notification; say here what it means.
      this.channel.error(
        `The language server stopped while starting (${String(error)}). Its messages above say why; "Treeflow: Restart Server" tries again.`,
      );
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

  /**
   * A server that never got as far as running is not restarted (the interpreter checks passed, so
   * a retry would fail the same way); one that crashed after running is, as the client does by default.
   */
  private clientOptions(hasRun: () => boolean, client: () => LanguageClient): LanguageClientOptions {
    let usual: ErrorHandler | undefined;
    const fallback = () => (usual ??= client().createDefaultErrorHandler());
    return {
      errorHandler: {
        error: (error, message, count) => fallback().error(error, message, count),
        closed: () => (hasRun() ? fallback().closed() : { action: CloseAction.DoNotRestart, handled: true }),
      },
      initializationFailedHandler: (error) => {
        this.channel.error(`The language server failed to initialize: ${String(error)}`);
        return false;
      },
      documentSelector: [
        { scheme: 'file', pattern: '**/treeflow.{yml,yaml}' },
        { scheme: 'file', pattern: '**/.treeflow/*.{yml,yaml}' },
      ],
      outputChannel: this.channel,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      // The status bar item and the Runs view show each run's progress; the server's work-done
      // progress would be a second status bar item saying the same.
      initializationOptions: { showsRunProgress: true } satisfies InitializationOptions,
      middleware: {
        // Code lenses run `treeflow.run` through the client, past the extension's own commands.
        executeCommand: async (command, args, next) => {
          const result: unknown = await next(command, args);
          const [runArgs] = args as [RunArgs | undefined];
          if (command === 'treeflow.run' && runArgs && isRunStarted(result)) {
            this.events.runStarted(runArgs, result);
          }
          return result;
        },
      },
    };
  }
}

function isRunStarted(value: unknown): value is RunStarted {
  return typeof value === 'object' && value !== null && typeof (value as { runId?: unknown }).runId === 'string';
}

function serverOptions(command: string, args: string[]): ServerOptions {
  const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  // No `transport`: the client would append `--stdio`, which `treeflow serve` does not take.
  return cwd ? { command, args, options: { cwd } } : { command, args };
}

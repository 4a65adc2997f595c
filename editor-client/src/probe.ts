// Asks an interpreter, before the language client starts it, whether it can run the server: a
// server that cannot start would make the client retry and show its own errors several times.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isRecentEnough, parseVersion, type Problem } from './interpreter';

const ANSWER_TIMEOUT_S = 15;

export interface Usable {
  version: string;
  treeflow: string;
}

interface Answer {
  stdout: string;
  stderr: string;
  code: string | number | undefined;
  timedOut: boolean;
}

function ask(command: string, args: string[]): Promise<Answer> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: ANSWER_TIMEOUT_S * 1000, windowsHide: true }, (error, stdout, stderr) => {
      const failure = error as (NodeJS.ErrnoException & { killed?: boolean }) | null;
      resolve({
        stdout: String(stdout),
        stderr: String(stderr),
        code: failure?.code ?? undefined,
        timedOut: Boolean(failure?.killed),
      });
    });
  });
}

function spawnProblem(answer: Answer): Problem | undefined {
  if (answer.code === 'ENOENT') {
    return { kind: 'missing' };
  }
  if (answer.code === 'EACCES' || answer.code === 'EISDIR') {
    return { kind: 'not-executable' };
  }
  if (answer.timedOut) {
    return { kind: 'no-answer', seconds: ANSWER_TIMEOUT_S };
  }
  return undefined;
}

/** The interpreter's version, then whether it loads the bundled server (`<entry> --check`). */
export async function probe(command: string, entryScript: string): Promise<Usable | Problem> {
  const versionAnswer = await ask(command, ['--version']);
  const early = spawnProblem(versionAnswer);
  if (early) {
    return early;
  }
  const said = `${versionAnswer.stdout}\n${versionAnswer.stderr}`.trim();
  const version = parseVersion(said);
  if (!version) {
    return { kind: 'not-python', answer: said.split('\n')[0] ?? '' };
  }
  const shown = version.join('.');
  if (!isRecentEnough(version)) {
    return { kind: 'too-old', version: shown };
  }
  const check = await ask(command, [entryScript, '--check']);
  const late = spawnProblem(check);
  if (late) {
    return late;
  }
  try {
    const report = JSON.parse(check.stdout.trim().split('\n').pop() ?? '') as { python?: string; treeflow?: string };
    if (check.code === undefined && report.treeflow) {
      return { version: report.python ?? shown, treeflow: report.treeflow };
    }
  } catch {
    // Not the report: the reason is on stderr.
  }
  const reason = check.stderr.trim().split('\n').pop()?.replace(/^treeflow: /, '') ?? '';
  return { kind: 'not-loadable', version: shown, reason: reason || `exit status ${String(check.code)}` };
}

export function isUsable(result: Usable | Problem): result is Usable {
  return 'treeflow' in result;
}

/** The first executable `name` in PATH, as a shell would find it. */
export function findOnPath(name: string, searchPath = process.env.PATH ?? ''): string | undefined {
  for (const dir of searchPath.split(path.delimiter)) {
    if (!dir) {
      continue;
    }
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) {
        return candidate;
      }
    } catch {
      // Not here.
    }
  }
  return undefined;
}

// Which Python starts the server, and what to tell the user when none can: pure, so that the
// wording of every cause is unit-tested.

export const MINIMUM_PYTHON = [3, 11] as const;

/** Where a candidate interpreter came from, in the order they are tried. */
export type Source = 'setting' | 'python-extension' | 'path';

export interface Candidate {
  /** What is run: a path, or the bare name that was looked up (then `problem` says it was not found). */
  command: string;
  source: Source;
}

export type Problem =
  | { kind: 'missing' }
  | { kind: 'not-on-path' }
  | { kind: 'not-executable' }
  | { kind: 'no-answer'; seconds: number }
  | { kind: 'not-python'; answer: string }
  | { kind: 'too-old'; version: string }
  | { kind: 'not-loadable'; version: string; reason: string };

export interface Tried {
  candidate: Candidate;
  problem: Problem;
}

/** `Python 3.12.1` (stdout since 3.4, stderr before) as numbers; undefined for any other answer. */
export function parseVersion(answer: string): [number, number, number] | undefined {
  const match = /^Python (\d+)\.(\d+)(?:\.(\d+))?/m.exec(answer.trim());
  if (!match) {
    return undefined;
  }
  return [Number(match[1]), Number(match[2]), Number(match[3] ?? 0)];
}

export function isRecentEnough([major, minor]: readonly number[]): boolean {
  const [needMajor, needMinor] = MINIMUM_PYTHON;
  return (major ?? 0) > needMajor || ((major ?? 0) === needMajor && (minor ?? 0) >= needMinor);
}

function named({ command, source }: Candidate): string {
  switch (source) {
    case 'setting':
      return `"treeflow.python" (${command})`;
    case 'python-extension':
      return `the Python extension's interpreter (${command})`;
    case 'path': {
      const name = command.split(/[\\/]/).pop() ?? command;
      return name === command ? `${name} on PATH` : `${name} on PATH (${command})`;
    }
  }
}

function sentence(tried: Tried): string {
  const who = named(tried.candidate);
  const { problem } = tried;
  switch (problem.kind) {
    case 'missing':
      return `${who}: no such file`;
    case 'not-on-path':
      return `no ${tried.candidate.command} was found on PATH`;
    case 'not-executable':
      return `${who} is not executable`;
    case 'no-answer':
      return `${who} did not answer within ${problem.seconds} s`;
    case 'not-python':
      return `${who} did not answer "--version" as a Python does${problem.answer ? ` ("${problem.answer.slice(0, 80)}")` : ''}`;
    case 'too-old':
      return `${who} is Python ${problem.version}`;
    case 'not-loadable':
      return `${who}, Python ${problem.version}, could not load treeflow: ${problem.reason}`;
  }
}

/** One message for the notification and the log, naming every interpreter tried and what was wrong. */
export function describeProblems(tried: readonly Tried[]): string {
  const needed = `Python ${MINIMUM_PYTHON.join('.')} or newer`;
  const onlyLoading = tried.length > 0 && tried.every(({ problem }) => problem.kind === 'not-loadable');
  const lead = onlyLoading
    ? 'Treeflow could not start its language server'
    : `Treeflow needs ${needed} to start its language server`;
  const causes = tried.map(sentence);
  return `${lead}: ${causes.join('; ')}. Select an interpreter, or set "treeflow.python".`;
}

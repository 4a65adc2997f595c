// Words and icons for runs and steps, shared by the status bar and the runs view.
import type { Run, RunStatus, StepState, StepStatus } from './protocol';
import { agentUsage } from './agentText';

export interface Icon {
  /** A codicon id, as in `$(id)`. */
  id: string;
  /** A theme color id, or undefined for the default foreground. */
  color?: string;
}

const INTERRUPTED: Icon = { id: 'debug-disconnect', color: 'list.warningForeground' };
// A status this client does not know yet (from a newer server) still gets an icon.
const UNKNOWN: Icon = { id: 'question' };

const STEP_ICONS: Record<StepStatus, Icon> = {
  pending: { id: 'circle-outline' },
  running: { id: 'sync~spin' },
  succeeded: { id: 'pass', color: 'testing.iconPassed' },
  cached: { id: 'pass-filled', color: 'testing.iconPassed' },
  failed: { id: 'error', color: 'testing.iconFailed' },
  timed_out: { id: 'watch', color: 'testing.iconFailed' },
  cancelled: { id: 'circle-slash', color: 'testing.iconSkipped' },
  skipped: { id: 'debug-step-over', color: 'disabledForeground' },
  interrupted: INTERRUPTED,
};

const RUN_ICONS: Record<RunStatus, Icon> = {
  running: { id: 'sync~spin' },
  succeeded: { id: 'check', color: 'testing.iconPassed' },
  failed: { id: 'error', color: 'testing.iconFailed' },
  cancelled: { id: 'circle-slash', color: 'testing.iconSkipped' },
  interrupted: INTERRUPTED,
};

/** `table[key]`, or UNKNOWN for a key it lacks (own keys only: not `toString`). */
function lookUp(table: Readonly<Record<string, Icon>>, key: string): Icon {
  return Object.hasOwn(table, key) ? (table[key] ?? UNKNOWN) : UNKNOWN;
}

export function stepIcon(status: StepStatus): Icon {
  return lookUp(STEP_ICONS, status);
}

const WAITING_FOR_APPROVAL: Icon = { id: 'bell', color: 'list.warningForeground' };

/** A step's icon: its status's, or a bell while it waits for a person to approve it. */
export function stepItemIcon(step: StepState): Icon {
  return waitsForApproval(step) ? WAITING_FOR_APPROVAL : stepIcon(step.status);
}

/** A step at its approval gate with no decision yet (a server without gates sends no `approval`). */
export function waitsForApproval(step: StepState): boolean {
  return Boolean(step.approval) && step.approval?.decision === null;
}

/** The steps of `run` that wait for approval, in file order. */
export function stepsWaitingForApproval(run: Run): string[] {
  return Object.entries(run.steps)
    .filter(([, step]) => waitsForApproval(step))
    .map(([id]) => id);
}

export function runIcon(run: Run): Icon {
  return isFailure(run) ? RUN_ICONS.failed : lookUp(RUN_ICONS, run.status);
}

/** A run still going on that a cancel is stopping (its steps may take their kill grace to end). */
export function isCancelling(run: Run): boolean {
  return run.status === 'running' && run.cancelling === true;
}

/** A run that failed or could not start at all. */
export function isFailure(run: Run): boolean {
  return run.status === 'failed' || Boolean(run.error);
}

/**
 * A run that `treeflow.resume` takes: one that ended without succeeding. A run that could not
 * start at all has nothing to resume.
 */
export function isResumable(run: Run): boolean {
  return (run.status === 'failed' || run.status === 'cancelled' || run.status === 'interrupted') && !run.error;
}

/** How loudly the status bar shows a run: a failure as an error, a crash of treeflow as a warning. */
export function attention(run: Run): 'error' | 'warning' | undefined {
  if (isFailure(run)) {
    return 'error';
  }
  return run.status === 'interrupted' ? 'warning' : undefined;
}

/** `0.4s`, `12.3s`, `2m 05s`, `1h 02m`. */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) {
    return '';
  }
  if (seconds < 59.95) {
    return `${seconds.toFixed(1)}s`;
  }
  const whole = Math.round(seconds);
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const rest = whole % 60;
  const pad = (n: number): string => String(n).padStart(2, '0');
  return hours > 0 ? `${hours}h ${pad(minutes)}m` : `${minutes}m ${pad(rest)}s`;
}

export function statusWord(status: string): string {
  return status === 'timed_out' ? 'timed out' : status;
}

/** Steps that made the run fail, in file order. */
export function failedSteps(run: Run): string[] {
  return Object.entries(run.steps)
    .filter(([, step]) => step.status === 'failed' || step.status === 'timed_out')
    .map(([id]) => id);
}

/**
 * `running · 40% · compiling`, `succeeded · 1.2s`, `failed · 0.3s · exit status 1`; an agent CLI's
 * step adds its usage: `running · Bash: pytest -q · 3 turns · 14.2k tokens · $0.0120`.
 */
/** Where a step's fix loop stands: `round 2 of 3`, with `fixing` while its fixer runs; else ''. */
export function roundText(step: StepState): string {
  const last = step.rounds?.[step.rounds.length - 1];
  if (!last) {
    return '';
  }
  const fixing = step.status === 'running' && last.fix_status === 'running' ? ' · fixing' : '';
  return `round ${last.round} of ${last.of}${fixing}`;
}

export function stepDescription(step: StepState): string {
  if (step.approval && waitsForApproval(step)) {
    const waiting = ['waiting for approval', step.approval.message];
    return (step.status === 'pending' ? waiting : [statusWord(step.status), ...waiting]).join(' · ');
  }
  const parts = [statusWord(step.status), roundText(step)];
  if (step.status === 'running') {
    if (step.progress !== null) {
      parts.push(`${Math.round(step.progress * 100)}%`);
    }
  } else {
    parts.push(formatDuration(step.duration_s));
  }
  if (step.status === 'running' && step.agent?.action) {
    parts.push(step.agent.action);
  } else if (step.status === 'running' && step.message) {
    parts.push(step.message);
  } else if (step.error && step.status !== 'cancelled' && step.status !== 'skipped') {
    parts.push(step.error);
  }
  if (step.cached_from) {
    parts.push(`from ${step.cached_from}`);
  }
  if (step.agent) {
    parts.push(agentUsage(step.agent));
  }
  return parts.filter((part) => part !== '').join(' · ');
}

/** The local time of day a run started, `09:30:12`, or '' if unknown. */
export function startTime(run: Run): string {
  if (!run.started_at) {
    return '';
  }
  const date = new Date(run.started_at);
  return Number.isNaN(date.getTime()) ? '' : date.toTimeString().slice(0, 8);
}

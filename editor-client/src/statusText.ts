// What the status bar item says about a run: text, and a Markdown tooltip listing the steps.
import {
  failedSteps,
  formatDuration,
  runIcon,
  statusWord,
  stepDescription,
  stepItemIcon,
  stepsWaitingForApproval,
} from './format';
import type { Run } from './protocol';

/**
 * `$(sync~spin) checks 3/6` while running, then `$(check) checks 12.3s`,
 * `$(error) checks: unit`, `$(circle-slash) checks cancelled` or `$(debug-disconnect) checks interrupted`.
 */
export function statusBarText(run: Run): string {
  const icon = `$(${runIcon(run).id})`;
  if (run.error) {
    return `${icon} ${run.workflow}: could not start`;
  }
  const waiting = run.status === 'running' ? stepsWaitingForApproval(run) : [];
  if (waiting.length) {
    return `$(bell) ${run.workflow}: ${waiting.join(', ')} waiting for approval`;
  }
  switch (run.status) {
    case 'running':
      return `${icon} ${run.workflow} ${run.done}/${run.total}`;
    case 'succeeded':
      return `${icon} ${run.workflow} ${formatDuration(run.duration_s)}`.trimEnd();
    case 'cancelled':
    case 'interrupted':
      return `${icon} ${run.workflow} ${run.status}`;
    case 'failed': {
      const failed = failedSteps(run);
      return `${icon} ${run.workflow}: ${failed.length ? failed.join(', ') : 'failed'}`;
    }
    default:
      return `${icon} ${run.workflow} ${statusWord(run.status as string)}`;
  }
}

export function statusBarTooltip(run: Run): string {
  const lines = [`**treeflow: ${escapeMarkdown(run.workflow)}** — ${runSummary(run)}`, ''];
  if (run.error) {
    lines.push(escapeMarkdown(run.error), '');
  }
  for (const [id, step] of Object.entries(run.steps)) {
    lines.push(`- $(${stepItemIcon(step).id}) ${escapeMarkdown(id)}: ${escapeMarkdown(stepDescription(step))}`);
  }
  if (run.result_branch) {
    lines.push('', `Result: \`${run.result_branch}\``);
  }
  return lines.join('\n');
}

/** `running 3/6`, `succeeded in 12.3s`, `failed: unit`, `cancelled`, `interrupted`. */
export function runSummary(run: Run): string {
  if (run.error) {
    return 'could not start';
  }
  const waiting = run.status === 'running' ? stepsWaitingForApproval(run) : [];
  if (waiting.length) {
    return `waiting for approval: ${waiting.join(', ')}`;
  }
  switch (run.status) {
    case 'running':
      return `running ${run.done}/${run.total}`;
    case 'succeeded':
      return `succeeded in ${formatDuration(run.duration_s)}`;
    case 'cancelled':
    case 'interrupted':
      return run.status;
    case 'failed': {
      const failed = failedSteps(run);
      return failed.length ? `failed: ${failed.join(', ')}` : 'failed';
    }
    default:
      return statusWord(run.status as string);
  }
}

function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>$]/g, '\\$&');
}

// The runs view's items as plain data, so that their content is testable without VS Code.
import { agentTooltip } from './agentText';
import {
  formatDuration,
  isCancelling,
  isResumable,
  runIcon,
  startTime,
  stepDescription,
  stepItemIcon,
  statusWord,
  waitsForApproval,
  type Icon,
} from './format';
import { isFinal, type ApprovalState, type Run } from './protocol';
import { CANCELLING, runSummary } from './statusText';

export interface ItemShape {
  /** Stable across updates, so that VS Code keeps each item's expansion and selection. */
  id: string;
  label: string;
  description: string;
  tooltip: string;
  icon: Icon;
  /**
   * Space-separated flags that the manifest's menus match with regular expressions:
   * `run` or `step`, then `running` (a run that can be cancelled) or `cancelling` (one a cancel is
   * stopping), `resumable`, `log`, `branch`, `agent` (an agent CLI's step,
   * which has a transcript), `approval` (a step waiting at its approval gate) where they apply, `work` on a
   * finished run with a result or a finished run's step with a branch (review, apply, undo), and
   * `discardable` on a finished run that has branches.
   */
  contextValue: string;
  /** Undefined for a leaf. */
  expanded?: boolean;
  /** The step's log file, opened on click. */
  log?: string;
}

/**
 * `2 of 5 steps` for a run of only some of its workflow's steps (`workflowSteps`, the steps the
 * file has now), else undefined. A matrix step counts once, as in the file.
 */
export function stepScope(run: Run, workflowSteps: readonly string[] | undefined): string | undefined {
  if (!workflowSteps) {
    return undefined;
  }
  const ran = new Set(Object.keys(run.steps).map((stepId) => stepId.split('[')[0] ?? stepId));
  const all = new Set(workflowSteps);
  if (ran.size >= all.size || ![...ran].every((stepId) => all.has(stepId))) {
    return undefined;
  }
  return `${ran.size} of ${all.size} steps`;
}

/**
 * `stat` is the change stat of the run's result (`+120 −14 in 7 files`), once known;
 * `workflowSteps` the steps its workflow file has now.
 */
export function runItem(run: Run, newest: boolean, stat?: string, workflowSteps?: readonly string[]): ItemShape {
  const flags = ['run'];
  if (isCancelling(run)) {
    flags.push('cancelling');
  } else if (run.status === 'running') {
    flags.push('running');
  }
  if (isResumable(run)) {
    flags.push('resumable');
  }
  if (run.result_branch) {
    flags.push('branch');
  }
  if (isFinal(run.status) && run.result_branch) {
    flags.push('work');
  }
  if (isFinal(run.status) && (run.result_branch || Object.values(run.steps).some((step) => step.branch))) {
    flags.push('discardable');
  }
  const time = startTime(run);
  const tooltip = [`${run.workflow}: ${runSummary(run)}`, `run ${run.run_id}`, run.workflow_path];
  if (run.error) {
    tooltip.push(run.error);
  }
  if (run.result_branch) {
    tooltip.push(`result: ${run.result_branch}`);
  }
  tooltip.push(...run.warnings.map((warning) => `warning: ${warning}`));
  if (stat) {
    tooltip.splice(1, 0, `changes: ${stat}`);
  }
  const scope = stepScope(run, workflowSteps);
  if (scope) {
    tooltip.splice(1, 0, `ran ${scope}: ${Object.keys(run.steps).join(', ')}`);
  }
  return {
    id: run.run_id,
    label: run.workflow,
    description: [runSummary(run), scope, stat, time].filter(Boolean).join(' · '),
    tooltip: tooltip.join('\n'),
    icon: runIcon(run),
    contextValue: flags.join(' '),
    expanded: newest || run.status === 'running',
  };
}

export function stepItem(run: Run, stepId: string): ItemShape {
  const step = run.steps[stepId];
  if (!step) {
    throw new Error(`run ${run.run_id} has no step ${stepId}`);
  }
  const flags = ['step'];
  if (step.log) {
    flags.push('log');
  }
  if (step.branch) {
    flags.push('branch');
  }
  if (step.branch && isFinal(run.status)) {
    flags.push('work');
  }
  if (step.agent && step.log) {
    flags.push('agent');
  }
  if (waitsForApproval(step)) {
    flags.push('approval');
  }
  const tooltip = [`${stepId}: ${statusWord(step.status)}`];
  if (step.duration_s !== null) {
    tooltip.push(`duration: ${formatDuration(step.duration_s)}`);
  }
  if (step.attempts > 1) {
    tooltip.push(`attempts: ${step.attempts}`);
  }
  if (step.exit_code !== null) {
    tooltip.push(`exit code: ${step.exit_code}`);
  }
  for (const [name, value] of [
    ['error', step.error],
    ['message', step.agent ? null : step.message],
    ['summary', step.summary],
    ['branch', step.branch],
    ['log', step.log],
  ] as const) {
    if (value) {
      tooltip.push(`${name}: ${value}`);
    }
  }
  if (step.agent) {
    tooltip.push(...agentTooltip(step.agent));
  }
  if (step.approval) {
    tooltip.push(...approvalTooltip(step.approval));
  }
  for (const round of step.rounds ?? []) {
    const fix = round.fixer && round.fix_status ? `, fixer ${round.fixer} ${statusWord(round.fix_status)}` : '';
    tooltip.push(`round ${round.round}: ${statusWord(round.status)}${fix}${round.branch ? ` (${round.branch})` : ''}`);
  }
  const item: ItemShape = {
    id: `${run.run_id}/${stepId}`,
    label: stepId,
    // Until its process tree is gone, which may take the kill grace.
    description: step.status === 'running' && isCancelling(run) ? CANCELLING : stepDescription(step),
    tooltip: tooltip.join('\n'),
    icon: stepItemIcon(step),
    contextValue: flags.join(' '),
  };
  if (step.log) {
    item.log = step.log;
  }
  return item;
}

function approvalTooltip(approval: ApprovalState): string[] {
  const lines = [`approval: ${approval.message}`];
  if (approval.decision === null) {
    lines.push(approval.expires_at ? `waiting until ${approval.expires_at}` : 'waiting for a decision');
    return lines;
  }
  const by = approval.decided_by ? ` by ${approval.decided_by}` : '';
  const via = approval.via ? ` (${approval.via})` : '';
  lines.push(`${statusWord(approval.decision)}${by}${via}${approval.decided_at ? ` at ${approval.decided_at}` : ''}`);
  if (approval.note) {
    lines.push(`note: ${approval.note}`);
  }
  return lines;
}

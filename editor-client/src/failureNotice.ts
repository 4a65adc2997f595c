// What the notification of a failed run says, and which step's log it offers.
import { failedSteps } from './format';
import { isFinal, type Run } from './protocol';

export interface FailureNotice {
  message: string;
  /** The first failed step that printed something, whose log "Show Log" opens. */
  logStep?: string;
}

/** For a run that has just failed or could not start; undefined for any other update. */
export function failureNotice(run: Run, before: Run | undefined): FailureNotice | undefined {
  const justEnded = !before || !isFinal(before.status);
  if (!justEnded || !isFinal(run.status)) {
    return undefined;
  }
  if (run.error) {
    return { message: `${run.workflow} could not start: ${run.error}` };
  }
  if (run.status !== 'failed') {
    return undefined;
  }
  const failed = failedSteps(run);
  const first = failed[0] === undefined ? undefined : run.steps[failed[0]];
  const why = failed.length === 1 && first?.error ? ` (${first.error})` : '';
  const message = failed.length ? `${run.workflow} failed: ${failed.join(', ')}${why}` : `${run.workflow} failed`;
  const logStep = failed.find((stepId) => run.steps[stepId]?.log);
  return logStep ? { message, logStep } : { message };
}

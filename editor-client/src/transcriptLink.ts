// Where an agent step's transcript lives as a read-only document, and when it is worth reading again.
// Free of the `vscode` import so that it is unit tested.
import { isFinal, type Run, type StepArgs } from './protocol';

export const TRANSCRIPT_SCHEME = 'treeflow-transcript';

const SUFFIX = ' transcript.md';

/** `/<run>/<step> transcript.md`: the tab reads `<step> transcript.md`, and `.md` makes it Markdown. */
export function transcriptPath({ runId, stepId }: StepArgs): string {
  return `/${runId}/${stepId}${SUFFIX}`;
}

/** The step a transcript path names, or undefined for a path no transcript has. */
export function transcriptStep(path: string): StepArgs | undefined {
  const parts = path.split('/');
  if (parts.length !== 3 || parts[0] !== '' || !parts[1] || !parts[2].endsWith(SUFFIX)) {
    return undefined;
  }
  const stepId = parts[2].slice(0, -SUFFIX.length);
  return stepId ? { runId: parts[1], stepId } : undefined;
}

/**
 * What the step's transcript depends on, as the run reports it: its state, its log and what its agent
 * said last. The same key means the same transcript; undefined for a step the run does not have.
 */
export function transcriptKey(run: Run | undefined, stepId: string): string | undefined {
  const step = run?.steps[stepId];
  if (!run || !step) {
    return undefined;
  }
  return JSON.stringify([step.status, step.log, step.attempts, step.agent, step.message, isFinal(run.status)]);
}

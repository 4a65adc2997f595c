// Quick pick entries for workflows, steps and runs, built without the `vscode` import.
import { startTime } from './format';
import type { Run, WorkflowInfo } from './protocol';
import { runSummary } from './statusText';

export interface Pick<T> {
  label: string;
  description?: string;
  detail?: string;
  /** Selected when a many-pick opens. */
  picked?: boolean;
  value: T;
}

/** A file URI's path relative to the first workspace folder holding it, else the whole path. */
export function displayPath(uri: string, folders: readonly string[]): string {
  let path = uri;
  try {
    path = uri.startsWith('file:') ? decodeURIComponent(new URL(uri).pathname) : uri;
  } catch {
    return uri;
  }
  for (const folder of folders) {
    const prefix = folder.endsWith('/') ? folder : `${folder}/`;
    if (path.startsWith(prefix)) {
      return path.slice(prefix.length);
    }
  }
  return path;
}

export function workflowPicks(workflows: readonly WorkflowInfo[], folders: readonly string[]): Pick<WorkflowInfo>[] {
  return workflows.map((workflow) => ({
    label: workflow.name,
    description: displayPath(workflow.uri, folders),
    detail: workflow.errors.length
      ? `$(error) ${workflow.errors[0]}${workflow.errors.length > 1 ? ` (+${workflow.errors.length - 1} more)` : ''}`
      : `${workflow.steps.length} ${workflow.steps.length === 1 ? 'step' : 'steps'}: ${workflow.steps.join(', ')}`,
    value: workflow,
  }));
}

/** A step pick's value: the ids of the steps it stands for, none for "All steps". */
export type StepChoice = string[];

/** "All steps", selected at first, then each step with what it needs. */
export function stepPicks(workflow: WorkflowInfo): Pick<StepChoice>[] {
  const all: Pick<StepChoice> = {
    label: 'All steps',
    description: `${workflow.steps.length} steps`,
    picked: true,
    value: [],
  };
  return [
    all,
    ...workflow.steps.map((step) => {
      const needs = workflow.needs[step] ?? [];
      return { label: step, detail: needs.length ? `needs ${needs.join(', ')}` : 'needs nothing', value: [step] };
    }),
  ];
}

/**
 * The steps to run for what was picked: none for every step (with "All steps" among them),
 * undefined when nothing was picked.
 */
export function chosenSteps(picked: readonly Pick<StepChoice>[]): string[] | undefined {
  if (!picked.length) {
    return undefined;
  }
  return picked.some((pick) => !pick.value.length) ? [] : picked.flatMap((pick) => pick.value);
}

export function runPicks(runs: readonly Run[]): Pick<Run>[] {
  return runs.map((run) => ({
    label: run.workflow,
    description: `${run.done}/${run.total}`,
    detail: `run ${run.run_id}`,
    value: run,
  }));
}

/** Ended runs, each with how it ended and when it started: `failed: oops · 09:30:12`. */
export function endedRunPicks(runs: readonly Run[]): Pick<Run>[] {
  return runs.map((run) => {
    const time = startTime(run);
    return {
      label: run.workflow,
      description: time ? `${runSummary(run)} · ${time}` : runSummary(run),
      detail: `run ${run.run_id}`,
      value: run,
    };
  });
}

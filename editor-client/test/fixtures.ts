// Run payloads shaped like the server's, with only what a test cares about spelled out.
import type { AgentState, Run, StepState } from '../src/protocol';

export function step(overrides: Partial<StepState> = {}): StepState {
  return {
    status: 'pending',
    attempts: 0,
    exit_code: null,
    started_at: null,
    ended_at: null,
    duration_s: null,
    branch: null,
    commit: null,
    log: null,
    error: null,
    progress: null,
    message: null,
    summary: null,
    agent: null,
    outputs: {},
    approval: null,
    rounds: [],
    ...overrides,
  };
}

export function run(overrides: Partial<Run> = {}): Run {
  const steps = overrides.steps ?? {};
  const values = Object.values(steps);
  return {
    run_id: '20261128-093012-4f2a',
    workflow: 'checks',
    workflow_path: '/home/me/project/treeflow.yml',
    status: 'running',
    base_commit: '3f1c',
    result_branch: null,
    started_at: '2026-11-28T09:30:12.104+00:00',
    ended_at: null,
    duration_s: null,
    warnings: [],
    // As the server counts: a step the run stopped is not done.
    done: values.filter((s) => !['pending', 'running', 'cancelled'].includes(s.status)).length,
    total: values.length,
    error: null,
    ...overrides,
    steps,
  };
}

export function agent(overrides: Partial<AgentState> = {}): AgentState {
  return {
    cli: 'claude',
    session_id: null,
    turns: null,
    input_tokens: null,
    output_tokens: null,
    cost_usd: null,
    action: null,
    last_message: null,
    ...overrides,
  };
}

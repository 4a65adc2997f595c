// The payloads of `treeflow serve`, mirrored from server/treeflow/lsp/protocol.py, whose classes
// have the same names (`Run` is `RunPayload` there); tests/lsp/test_protocol_drift.py fails when
// the two differ. Kept free of the `vscode` import so that pure helpers and tests can use it.

export type StepStatus =
  | 'pending'
  | 'running'
  | 'succeeded'
  | 'cached'
  | 'failed'
  | 'timed_out'
  | 'cancelled'
  | 'skipped'
  | 'interrupted';
export type RunStatus = 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted';
/** How an approval gate was decided: by a person, or by treeflow on a timeout or a stopped run. */
export type Decision = 'approved' | 'rejected' | 'timed_out' | 'withdrawn';
/** Where it was decided. */
export type Channel = 'terminal' | 'cli' | 'editor' | 'treeflow';

/** A step's approval gate: asked (`decision` null while it waits), then decided. */
export interface ApprovalState {
  /** The question, as the workflow's `approve.message` has it. */
  message: string;
  requested_at: string | null;
  /** When it times out; null without a timeout. */
  expires_at: string | null;
  decision: Decision | null;
  /** The user who decided (`treeflow` for a timeout or a withdrawal). */
  decided_by: string | null;
  via: Channel | null;
  decided_at: string | null;
  /** The message given with the decision. */
  note: string | null;
}

/** What an agent CLI's stream said of a step's agent; null where the CLI reports none. */
export interface AgentState {
  /** The `use:` value: claude, codex, gemini, cursor, opencode. */
  cli: string;
  session_id: string | null;
  turns: number | null;
  input_tokens: number | null;
  output_tokens: number | null;
  cost_usd: number | null;
  /** What it is doing now (a tool call, a file edited, a command run), while it runs. */
  action: string | null;
  /** The last thing the agent said (at most 2000 characters). */
  last_message: string | null;
}

/** One round of a step's fix loop (`on_failure:`): the step's run, then its fixer's on top. */
export interface RoundState {
  round: number;
  /** The last round this execution of the run may reach. */
  of: number;
  status: StepStatus;
  exit_code: number | null;
  error: string | null;
  fixer: string | null;
  fix_status: StepStatus | null;
  fix_error: string | null;
  /** The branch that keeps the round's work. */
  branch: string | null;
  commit: string | null;
  started_at: string | null;
  ended_at: string | null;
}

export interface StepState {
  status: StepStatus;
  attempts: number;
  exit_code: number | null;
  started_at: string | null;
  ended_at: string | null;
  duration_s: number | null;
  branch: string | null;
  commit: string | null;
  /** Path of the step's log file; null while the step has printed nothing. */
  log: string | null;
  error: string | null;
  /** Agent steps: 0..1, with the agent's own words. */
  progress: number | null;
  message: string | null;
  summary: string | null;
  /** Steps with `agent: {use: …}`: the agent's session, tokens and cost; else null. */
  agent: AgentState | null;
  /** What the step set for the steps after it (`$TREEFLOW_OUTPUT`, an agent's report). */
  outputs: Record<string, string>;
  /** Steps with `approve:` once they reached their gate; else null. */
  approval: ApprovalState | null;
  /** A `cached` step: the `<run_id>/<step_id>` whose work was replayed; else null. */
  cached_from?: string | null;
  /** Steps with `on_failure:`: their rounds so far; else empty. */
  rounds: RoundState[];
}

export interface Run {
  run_id: string;
  workflow: string;
  workflow_path: string;
  status: RunStatus;
  base_commit: string | null;
  result_branch: string | null;
  started_at: string | null;
  ended_at: string | null;
  duration_s: number | null;
  /** In file order. */
  steps: Record<string, StepState>;
  warnings: string[];
  /** Steps that ended by themselves (a step the run stopped, `cancelled`, is not done), and steps in the run. */
  done: number;
  total: number;
  /** Why the run could not start, else null. Read as optional: a missing one means no failure. */
  error?: string | null;
  /** A cancel is stopping the run: still `running` until its steps have ended. Read as optional. */
  cancelling?: boolean;
}

/** A starter treeflow.yml in `folder`, a workspace folder (the first one when absent). */
export interface InitWorkflowArgs {
  /** The URI or path of a workspace folder. */
  folder?: string | null;
}

export interface InitWorkflowResult {
  uri: string;
  /** False when the folder had a workflow already: `uri` is that file, unchanged. */
  created: boolean;
  steps: string[];
  /** What the steps were read from (package.json, Makefile, …); empty when nothing was found. */
  sources: string[];
}

export interface WorkflowInfo {
  uri: string;
  name: string;
  steps: string[];
  errors: string[];
  /** What each step needs, by the ids written in the file; empty for a workflow with errors. */
  needs: Record<string, string[]>;
}

/** What the client says of itself in `initialize`. */
export interface InitializationOptions {
  /** The client shows each run's progress itself, so the server sends no work-done progress for runs. */
  showsRunProgress?: boolean;
}

export interface RunUpdatedParams {
  run: Run;
}

/** Which of a step's output streams a line came from. */
export type OutputStream = 'stdout' | 'stderr';

/** Whole lines of one step's output, all from one stream. */
export interface LogParams {
  runId: string;
  stepId: string;
  text: string;
  /** Absent from a server that does not tell the streams apart: stdout. */
  stream?: OutputStream;
}

export const RUN_UPDATED = 'treeflow/runUpdated';
export const LOG = 'treeflow/log';

export interface RunArgs {
  /** The URI or path of a workflow file. */
  workflow: string;
  /** Step ids to run, with what they need; all steps when absent. */
  steps?: string[];
}

export interface RunIdArgs {
  runId: string;
}

export interface ResumeArgs {
  runId: string;
  /** Start the steps that run again from the checkout as it is now, not from the run's base. */
  rebase?: boolean;
}

export interface ApproveArgs {
  runId: string;
  stepId: string;
  /** False rejects. */
  approve: boolean;
  message?: string | null;
}

export interface ApproveResult {
  approval: ApprovalState;
  /** No process waited at the gate (its server had stopped): the server resumed the run. */
  resumed: boolean;
}

export interface StepArgs {
  runId: string;
  stepId: string;
}

/** An agent step's log as Markdown: what the agent said, its tool calls and their results, its totals. */
export interface AgentTranscript {
  markdown: string;
}

export interface RunStarted {
  runId: string;
}

export interface CancelResult {
  /** False when the run had already ended. */
  cancelled: boolean;
}

// Reviewing and applying a run's work, with the semantics of `treeflow diff`, `apply`, `discard`.

export type ChangeStatus = 'added' | 'modified' | 'deleted' | 'renamed' | 'mode';
export type ApplyMode = 'working-tree' | 'squash' | 'merge';
export type ConflictPolicy = 'refuse' | 'markers';
export type ApplyOutcome = 'applied' | 'already_applied' | 'conflicts';

export interface DiffArgs {
  runId: string;
  /** The work of these steps, merged; the run's result when absent. */
  steps?: string[];
}

export interface FileChange {
  path: string;
  /** Where a renamed file was. */
  oldPath: string | null;
  status: ChangeStatus;
  additions: number;
  deletions: number;
  binary: boolean;
}

export interface DiffResult {
  runId: string;
  steps: string[];
  /** The repository's folder; paths are relative to it. */
  root: string;
  /** Full commit ids: `commit` compared with `base`. */
  base: string;
  commit: string;
  additions: number;
  deletions: number;
  files: FileChange[];
}

export interface ApplyArgs {
  runId: string;
  steps?: string[];
  mode?: ApplyMode;
  conflicts?: ConflictPolicy;
}

export interface FileConflict {
  path: string;
  /** The steps of the run that changed it. */
  steps: string[];
}

export interface ApplyResult {
  outcome: ApplyOutcome;
  mode: ApplyMode;
  /** `run <id>` or `step <id> of run <id>`. */
  work: string;
  files: string[];
  conflicts: FileConflict[];
  /** What the work conflicted with: `your working tree`, `HEAD`, … */
  conflictsWith: string;
  backup: string | null;
  commit: string | null;
}

export interface UndoArgs {
  /** Undo the last apply in this run's repository, which must be one of this run. */
  runId?: string | null;
}

export interface UndoResult {
  backup: string;
  work: string;
  files: string[];
  /** Where HEAD was put back to, when the apply had moved it. */
  head: string | null;
}

export interface DiscardArgs {
  runId: string;
  /** Branch name to the tip the plan showed; absent: only the plan, nothing deleted. */
  confirmed?: Record<string, string> | null;
}

export interface DiscardBranch {
  name: string;
  tip: string;
  /** `<short id> <subject>` of each commit found nowhere outside the run. */
  uniqueCommits: string[];
  checkedOut: boolean;
}

export interface DiscardResult {
  runId: string;
  branches: DiscardBranch[];
  discarded: boolean;
  deleted: string[];
  kept: string[];
}

export interface ReadFileArgs {
  /** A commit id. */
  rev: string;
  /** The absolute path of a file in a repository of the workspace. */
  path: string;
}

export interface FileContent {
  exists: boolean;
  binary: boolean;
  size: number;
  /** Null when the file does not exist at that revision, is binary or too large. */
  text: string | null;
}

/** `workspace/executeCommand` commands of the server: [argument, result]. */
export interface ServerCommands {
  'treeflow.listWorkflows': [undefined, WorkflowInfo[]];
  'treeflow.run': [RunArgs, RunStarted];
  'treeflow.cancel': [RunIdArgs, CancelResult];
  'treeflow.resume': [ResumeArgs, RunStarted];
  'treeflow.approve': [ApproveArgs, ApproveResult];
  'treeflow.listRuns': [undefined, Run[]];
  'treeflow.getRun': [RunIdArgs, Run];
  'treeflow.diff': [DiffArgs, DiffResult];
  'treeflow.apply': [ApplyArgs, ApplyResult];
  'treeflow.undoApply': [UndoArgs, UndoResult];
  'treeflow.discard': [DiscardArgs, DiscardResult];
  'treeflow.readFile': [ReadFileArgs, FileContent];
  'treeflow.agentTranscript': [StepArgs, AgentTranscript];
  'treeflow.initWorkflow': [InitWorkflowArgs, InitWorkflowResult];
}

export function isFinal(status: StepStatus | RunStatus): boolean {
  return status !== 'pending' && status !== 'running';
}

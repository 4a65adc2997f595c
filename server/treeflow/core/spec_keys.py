"""The keys of a workflow file as data: where each may be written, what its value is, what it does.

The parser takes the keys it accepts at each place from here, and the editor's completion and hover
and the published JSON Schema are built from the same descriptions, so none of them can know a key
the others do not. Each step kind describes its own key (`StepKind.doc`, `StepKind.shape`); the
keys every step has are `STEP_KEYS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Text:
    """A string; ``not_blank``, with something in it besides spaces. ``choices`` are values worth
    offering, each with what it means; with ``closed``, they are the only ones accepted."""

    example: str = "text"
    choices: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    closed: bool = False
    not_blank: bool = False
    wording: str = "a string"


@dataclass(frozen=True)
class Whole:
    minimum: int
    example: str = "1"

    @property
    def wording(self) -> str:
        return f"a whole number, at least {self.minimum}"


@dataclass(frozen=True)
class Flag:
    example: str = "true"
    wording: str = "true or false"


@dataclass(frozen=True)
class Fraction:
    example: str = "0.1"
    wording: str = "a number from 0 to 1"


@dataclass(frozen=True)
class Duration:
    example: str = "10m"
    wording: str = "a duration: 250ms, 10s, 5m, 1h, 1h30m, or a number of seconds (at most 720h)"


@dataclass(frozen=True)
class TextList:
    """A list of strings, or one string. ``step_ids``: each names a step of the workflow."""

    example: str = "[a, b]"
    step_ids: bool = False
    wording: str = "a list of strings, or one string"


@dataclass(frozen=True)
class Variables:
    """Environment variables: any names, each with a value as written."""

    example: str = "{NAME: value}"
    wording: str = "a mapping of environment variable names to values"


@dataclass(frozen=True)
class Fields:
    """A mapping whose keys are ``keys`` and no others."""

    keys: tuple[Key, ...]
    wording: str = "a mapping"

    @property
    def example(self) -> str:
        required = [f"{key.name}: {key.shape.example}" for key in self.keys if key.required]
        return "{" + ", ".join(required) + "}"


@dataclass(frozen=True)
class Either:
    """One of several shapes: `retry: 3` or `retry: {attempts: 3, backoff: 2s}`; several `Fields`
    are the forms of one block, each a set of keys that go together (an agent's, say)."""

    shapes: tuple[Shape, ...]

    @property
    def example(self) -> str:
        return self.shapes[0].example

    @property
    def wording(self) -> str:
        return " or ".join(dict.fromkeys(shape.wording for shape in self.shapes))


@dataclass(frozen=True)
class Steps:
    """The steps, by id; each step's keys are its kind's key and `STEP_KEYS` (see `kinds.step_keys`)."""

    example: str = "{a: {run: 'true'}}"
    wording: str = "a mapping of step ids to steps"


@dataclass(frozen=True)
class Combinations:
    """A list of mappings, each of matrix keys to values: a matrix's `include` or `exclude`."""

    example: str = "[{python: '3.13'}]"
    wording: str = "a list of mappings of matrix keys to values"


@dataclass(frozen=True)
class Matrix:
    """Keys the user names, each with a list of values, beside the fixed ``keys`` (`include`,
    `exclude`)."""

    keys: tuple[Key, ...]
    example: str = "{python: ['3.11', '3.12']}"
    wording: str = "a mapping of keys to lists of values, with `include` and `exclude`"


Shape = (
    Text
    | Whole
    | Flag
    | Fraction
    | Duration
    | TextList
    | Variables
    | Fields
    | Either
    | Steps
    | Combinations
    | Matrix
)


@dataclass(frozen=True)
class Key:
    name: str
    doc: str
    """What the key does, in a sentence or two of Markdown."""
    shape: Shape
    default: str | None = None
    """What applies without the key, as a user would read it."""
    required: bool = False


def names(keys: tuple[Key, ...]) -> tuple[str, ...]:
    return tuple(key.name for key in keys)


RETRY_KEYS = (
    Key("attempts", "How many times the step is tried in all; 1 is no retry.", Whole(1, "3"), "1"),
    Key(
        "backoff",
        "The wait before the first retry; it doubles before each next one.",
        Duration("1s"),
        "1s",
    ),
    Key("max_backoff", "The longest wait between two attempts.", Duration("30s"), "30s"),
    Key(
        "jitter",
        "Each wait is moved by up to this fraction either way, so that parallel retries do not "
        "fall into lockstep.",
        Fraction(),
        "0.1",
    ),
)

_RETRY = Either((Whole(1, "3"), Fields(RETRY_KEYS)))
_RETRY_DOC = (
    "How the step is retried after a failure or a timeout (never after a cancellation): "
    "`{attempts, backoff, max_backoff, jitter}`, or a number meaning `attempts`. A step's own "
    "settings are merged over `defaults.retry`."
)
_TIMEOUT_DOC = (
    "How long one attempt may take; past it the step ends `timed_out` and its process tree is killed."
)
_WORKTREE_DOC = (
    "`false` runs the step in your checkout itself instead of a worktree of its own; for steps "
    "that only read."
)

MATRIX_KEYS = (
    Key(
        "include",
        "Combinations to add: an entry extends each combination whose values it keeps (with its "
        "other keys), else it is a combination of its own.",
        Combinations(),
        "none",
    ),
    Key(
        "exclude",
        "Combinations to leave out: each combination that has every value of an entry.",
        Combinations("[{python: '3.11', shard: 3}]"),
        "none",
    ),
)

EXECUTOR_CHOICES = MappingProxyType(
    {
        "local": "On this machine.",
        "dask": "On the workers of a Dask cluster (`pip install 'treeflow[dask]'`; the scheduler's "
        "address from `--dask-scheduler` or `TREEFLOW_DASK_SCHEDULER`).",
    }
)
_EXECUTOR = Text("dask", EXECUTOR_CHOICES, closed=True, wording="`local` or `dask`")

RESOURCE_KEYS = (
    Key("cpu", "CPUs the step holds on its worker.", Whole(1, "2"), "none"),
    Key("gpu", "GPUs the step holds on its worker.", Whole(1, "1"), "none"),
    Key(
        "memory",
        "Memory the step holds on its worker: `512MiB`, `8GiB`, `2GB`, or a number of bytes.",
        Either(
            (Text("8GiB", not_blank=True, wording="a size such as 512MiB or 8GiB"), Whole(1, "1073741824"))
        ),
        "none",
    ),
)

APPROVE_KEYS = (
    Key(
        "message",
        "The question a person answers, in the terminal prompt, the editor's notification and "
        "`treeflow show`.",
        Text("Deploy to staging?", not_blank=True, wording="a question"),
        required=True,
    ),
    Key(
        "timeout",
        "How long to wait for a decision; past it the step ends `timed_out` and the steps that "
        "need it are skipped.",
        Duration("1h"),
        "none: it waits until someone decides or the run is cancelled",
    ),
)

CACHE_KEYS = (
    Key(
        "inputs",
        "Glob patterns of the files the step's result depends on (`src/**`, `package.json`), "
        "relative to the repository root; a folder matched brings everything under it.",
        TextList("['src/**', package.json]"),
        "the whole tree",
        required=True,
    ),
)
_CACHE_DOC = (
    "Reuse the step's work from an earlier run when nothing it depends on changed: the content of "
    "its `inputs` at its start commit (`true`: the whole tree), its command or prompt, its `env` and "
    "the cache keys of its needs. On a hit the step does not run; its changes are replayed onto its "
    "start commit and it ends `cached`. `--no-cache` runs every step."
)

MAX_ROUNDS = 20
"""More rounds of one fix loop than this is most likely a mistake, and a costly one with an agent."""

ON_FAILURE_KEYS = (
    Key(
        "run_step",
        "The id of the step that fixes this one (its fixer, typically an agent): it runs in this "
        "step's worktree on top of the failed work, reading `${{ failure.log_tail }}`, "
        "`${{ failure.exit_code }}`, `${{ failure.step }}`, `${{ failure.round }}` and "
        "`${{ failure.error }}`. A step named here runs only as a fixer, never on its own.",
        Text("a", not_blank=True, wording="a step id"),
        required=True,
    ),
    Key(
        "then",
        "What follows the fix: `retry` runs this step again on top of it, in a new round.",
        Text(
            "retry",
            MappingProxyType({"retry": "Run the step again on top of the fix."}),
            closed=True,
            wording="`retry`",
        ),
        "retry",
    ),
    Key(
        "max_rounds",
        f"How many times the step runs in all, the first included (2 to {MAX_ROUNDS}); the fixer "
        "runs after each failed round but the last.",
        Whole(2, "3"),
        "3",
    ),
)

STEP_KEYS = (
    Key(
        "needs",
        "Ids of the steps that must succeed before this one starts; it starts from the merge of their work.",
        TextList("[a]", step_ids=True),
        "none: the step starts at once",
    ),
    Key(
        "if",
        "A condition: the step runs only when it holds, else it ends skipped. `success()`, "
        "`failure()`, `always()`, `cancelled()`, comparisons of `needs.<id>.status`, "
        "`needs.<id>.outputs.<name>`, `env.<NAME>` and `matrix.<key>`, with `&&`, `||`, `!` and "
        "parentheses.",
        Text("failure()", not_blank=True, wording="a condition"),
        "`success()`: every earlier step succeeded",
    ),
    Key("timeout", _TIMEOUT_DOC, Duration(), "`defaults.timeout`, else none"),
    Key("retry", _RETRY_DOC, _RETRY, "`defaults.retry`, else 1 attempt"),
    Key(
        "env",
        "Extra environment variables for the step; they override the workflow's `env`.",
        Variables(),
        "none",
    ),
    Key("worktree", _WORKTREE_DOC, Flag(), "`defaults.worktree`, else true"),
    Key(
        "matrix",
        "Runs the step once per combination of these values, each combination a step of its own "
        "(`test[python=3.11,shard=1]`, on branch `…/test.python-3.11.shard-1`) that reads its values "
        "as `${{ matrix.<key> }}`. Steps that need it wait for every combination.",
        Matrix(MATRIX_KEYS),
        "none: the step runs once",
    ),
    Key(
        "approve",
        "An approval gate: once its needs are done, the step waits, holding no slot and no "
        "worktree, until a person approves (at the terminal's prompt, with `treeflow approve`, or "
        "in the editor); a rejection fails it. A string is the `message`.",
        Either((Text("Deploy to staging?", not_blank=True, wording="a question"), Fields(APPROVE_KEYS))),
        "none: the step starts as soon as its needs allow",
    ),
    Key("cache", _CACHE_DOC, Either((Flag(), Fields(CACHE_KEYS))), "false: the step always runs"),
    Key(
        "executor",
        "Where this step runs: `local` keeps it on this machine when the run uses Dask (an agent "
        "that needs your editor, say); `dask` sends it to the cluster.",
        _EXECUTOR,
        "the run's executor",
    ),
    Key(
        "resources",
        "What the step holds on a Dask worker while it runs, as Dask worker resources of the same "
        "names: a worker started with `--resources cpu=8,gpu=1,memory=32e9` runs steps whose "
        "sum fits. Ignored by steps that run locally.",
        Fields(RESOURCE_KEYS),
        "none",
    ),
    Key(
        "on_failure",
        "A bounded fix loop: when the step fails, step `run_step` fixes it in its worktree, then "
        "the step runs again on top of the fix, at most `max_rounds` times in all; each round's "
        "work is kept on its own branch (`…/<step>.round-<n>`), and the step ends as its last "
        "round did.",
        Fields(ON_FAILURE_KEYS),
        "none: a failure is final",
    ),
)
"""The keys every step may have, whatever its kind."""

DEFAULTS_KEYS = (
    Key("timeout", _TIMEOUT_DOC + " For every step without its own.", Duration(), "none"),
    Key("retry", _RETRY_DOC, _RETRY, "1 attempt, backoff 1s, max_backoff 30s, jitter 0.1"),
    Key("worktree", _WORKTREE_DOC + " For every step without its own.", Flag(), "true"),
)

SETUP_KEYS = (
    Key(
        "copy",
        "Glob patterns of files copied from your checkout into each fresh worktree (ignored files "
        "such as `.env`, say); never committed, links kept as links.",
        TextList("['.env']"),
        "none",
    ),
    Key(
        "run",
        "A command run in each fresh worktree before the step's own.",
        Text("npm ci", not_blank=True, wording="a command"),
        "none",
    ),
    Key(
        "when_changed",
        "Glob patterns of files (a lockfile, say): `run` runs in a worktree only when they, or the "
        "command, changed since it last succeeded there, or what it made is gone.",
        TextList("[package-lock.json]"),
        "none: `run` runs in every worktree",
    ),
)
POOL_KEYS = (
    Key("size", "How many worktrees the pool keeps; 0 turns it off.", Whole(0, "4"), "`max_parallel`"),
    Key("idle", "How long a pooled worktree may stay unused before it is removed.", Duration("1h"), "1h"),
    Key(
        "keep",
        "Ignored folders that survive in a pooled worktree from one step to the next "
        "(`node_modules`, `.venv`, `target`); everything else untracked is removed.",
        TextList("[node_modules, .venv]"),
        "none",
    ),
)

BASES = MappingProxyType(
    {
        "working": "Your checkout as it is, uncommitted changes included.",
        "head": "The last commit of your checkout (HEAD), without uncommitted changes.",
    }
)

WORKFLOW_KEYS = (
    Key("version", "The version of the workflow format; only 1 is understood.", Whole(1), "1"),
    Key(
        "name", "The workflow's name, as runs show it.", Text("checks"), "the file name without its extension"
    ),
    Key(
        "max_parallel",
        "How many steps may run at once; `--max-parallel` overrides it.",
        Whole(1, "4"),
        "the number of CPUs",
    ),
    Key(
        "fail_fast",
        "`true`: the first failure cancels every running step and skips the rest. `false`: only "
        "the steps that need the failed one are skipped.",
        Flag(),
        "true",
    ),
    Key(
        "base",
        "What the steps start from: `working`, `head`, or any git revision.",
        Text("working", BASES, not_blank=True, wording="`working`, `head` or a git revision"),
        "working",
    ),
    Key("defaults", "Settings for every step that does not give its own.", Fields(DEFAULTS_KEYS), "none"),
    Key("setup", "What each fresh worktree gets before its step runs.", Fields(SETUP_KEYS), "none"),
    Key(
        "pool",
        "The warm worktree pool: worktrees whose work was saved are kept and moved to the next "
        "step's start commit instead of checked out anew. `false` turns it off.",
        Either((Flag(), Fields(POOL_KEYS))),
        "on, `size` = `max_parallel`, `idle` 1h",
    ),
    Key(
        "executor",
        "Where the steps run: `local` (this machine) or `dask` (a Dask cluster). `--executor` and "
        "`TREEFLOW_EXECUTOR` override it; a step's own `executor` overrides all of them.",
        _EXECUTOR,
        "local",
    ),
    Key(
        "env",
        "Extra environment variables for every step; a step's own `env` overrides them.",
        Variables(),
        "none",
    ),
    Key(
        "steps",
        "The steps, by id: 1 to 64 letters, digits, `-` or `_`, not starting with `-`. Each has one "
        "kind key (`run:`, `agent:`, …) and may have `needs`, `if`, `timeout`, `retry`, `env`, "
        "`worktree`, `matrix`, `approve`, `cache`, `on_failure`.",
        Steps(),
        required=True,
    ),
)
"""The keys at the top of a workflow file."""

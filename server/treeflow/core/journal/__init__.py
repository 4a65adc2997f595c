"""The run journal: every run, step, attempt, process group and worktree, in SQLite.

Only what recovery and history need is written, and as few rows as that allows: a run's row lists
its steps, so a step that has not started needs no row of its own; a step gets one in `steps` while
it holds a place (worktree, branch, start commit) or process groups that a crash would leave
behind; and the outcomes of the steps that ended within one batch of writes share one row of
`step_outcomes`, a JSON list, which a reader lays over `steps`. A thousand one-second steps thus
cost tens of rows, not thousands. What it records lets a later treeflow process find a run whose
process died, kill what that run left running, save its worktrees, and resume it.

`schema` holds the file and its tables, `compatibility` its format and the treeflow versions that
share it, `rows` a class per kind of row, `writer` the event sink (with `coalesce`, what a batch of
events becomes), `readers` the runs as read back (with `rounds`, `approvals` and `workers`, which
own their tables), and `statements` what recovery and `treeflow clean` write.
"""

from treeflow.core.journal.compatibility import JOURNAL_FORMAT, JournalTooNew
from treeflow.core.journal.errors import JournalUnavailable
from treeflow.core.journal.readers import (
    RunRecord,
    StepRecord,
    live_process_groups,
    matching_run_ids,
    read_run,
    read_runs,
    remote_places,
)
from treeflow.core.journal.schema import connect, journal_path
from treeflow.core.journal.statements import (
    Statement,
    execute,
    forget_runs_before,
    mark_discarded,
    mark_run,
    mark_step,
    processes_ended,
    record_run,
)
from treeflow.core.journal.writer import Journal

__all__ = [
    "JOURNAL_FORMAT",
    "Journal",
    "JournalTooNew",
    "JournalUnavailable",
    "RunRecord",
    "Statement",
    "StepRecord",
    "connect",
    "execute",
    "forget_runs_before",
    "journal_path",
    "live_process_groups",
    "mark_discarded",
    "mark_run",
    "mark_step",
    "matching_run_ids",
    "processes_ended",
    "read_run",
    "read_runs",
    "record_run",
    "remote_places",
]

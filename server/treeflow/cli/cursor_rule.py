"""The Cursor rule `treeflow init --cursor` writes: how Cursor's agents take part in a workflow."""

CURSOR_RULE = """\
---
description: How to work on a treeflow task (a step of a treeflow workflow) and report on it
alwaysApply: true
---

# treeflow tasks

This repository uses treeflow to run workflows whose steps may be jobs for coding agents. When
treeflow gives you a task, you work in a git worktree of your own, and treeflow waits for you to
report through a status file.

## Is there a task for you?

Look for `.treeflow/task.json` in the folder you were started in or one of its parents. If there
is none, there is no treeflow task and none of this applies. If there is one:

- `.treeflow/PROMPT.md` says what to do. Do exactly that.
- `.treeflow/task.json` holds `run_id`, `step_id`, `heartbeat_s` and the `nonce` of the task.
- Work only inside this worktree. Do not switch branches, rebase, or push. You may commit, but you
  do not have to: treeflow commits everything you leave in the worktree when the step ends.
- Never edit files inside `.treeflow/` by hand.

## Report as you go

Report with the `treeflow agent report` command, run from anywhere inside the worktree:

```sh
treeflow agent report --state running --progress 0.1 --message "reading the code"
treeflow agent report --state running --progress 0.6 --message "tests pass, writing docs"
treeflow agent report --state succeeded --summary "what you changed, in one or two sentences"
treeflow agent report --state failed --error "why you could not finish"
```

- Report `running` at least once every `heartbeat_s` seconds (see task.json); a silent agent is
  taken for dead and its step fails.
- `--progress` is a number from 0 to 1; `--message` says what you are doing now.
- End with exactly one `succeeded` or `failed` report. Nothing you do after that is waited for.
"""

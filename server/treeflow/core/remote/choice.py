"""Which executor a run uses, and the one place that builds it.

The command line (`--executor`, `--dask-scheduler`, `--insecure`) wins over the environment
(`TREEFLOW_EXECUTOR`, `TREEFLOW_DASK_SCHEDULER`), which wins over the workflow's `executor:`; a
step's own `executor:` wins over all of them. Nothing here imports `distributed`: only a run that
sends steps to Dask loads it, and one without it installed is told how to install it.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from treeflow.core.executor import Executor, LocalExecutor
from treeflow.core.git import Repository
from treeflow.core.model import EXECUTORS, Step, Workflow
from treeflow.core.workspace import RunRefusal, Workspace

EXECUTOR_VARIABLE = "TREEFLOW_EXECUTOR"
SCHEDULER_VARIABLE = "TREEFLOW_DASK_SCHEDULER"
INSTALL_DASK = "pip install 'treeflow[dask]'"
_LOCAL_HOSTS = frozenset({"localhost", "localhost.localdomain"})


class ExecutorRefused(ValueError):
    """The executor asked for cannot be used as asked; the message says why."""


class ExecutorUnavailable(ExecutorRefused):
    """The executor asked for needs a package that is not installed; the message says how to get it."""


class SchedulerUnreachable(RunRefusal, ExecutorRefused):
    """The Dask scheduler cannot be reached (or not with the certificates Dask's configuration
    holds): the run is refused before any step starts, as a choice of executor that cannot be used."""


@dataclass(frozen=True)
class ExecutorChoice:
    """The run's executor (``local`` or ``dask``) and, for Dask, the scheduler to connect to."""

    name: str = "local"
    scheduler: str | None = None
    insecure: bool = False

    def remote(self, step: Step) -> bool:
        """Whether ``step`` runs on a Dask worker: one that runs in the checkout never does."""
        chosen = step.executor or self.name
        return chosen == "dask" and step.worktree


def choose_executor(
    workflow: Workflow,
    *,
    given: str | None = None,
    scheduler: str | None = None,
    insecure: bool = False,
    environ: Mapping[str, str] = os.environ,
) -> ExecutorChoice:
    """The executor for a run of ``workflow``: ``given`` (the command line), else the environment,
    else the workflow's own. Raises ExecutorRefused for an unknown name, a Dask run without a
    scheduler, or a scheduler elsewhere that is not reached over TLS (unless ``insecure``)."""
    name = given or environ.get(EXECUTOR_VARIABLE) or workflow.executor or "local"
    if name not in EXECUTORS:
        source = "--executor" if given else EXECUTOR_VARIABLE
        raise ExecutorRefused(f"{source}: unknown executor {name!r} (choose local or dask)")
    choice = ExecutorChoice(name, scheduler or environ.get(SCHEDULER_VARIABLE) or None, insecure)
    if not any(choice.remote(step) for step in workflow.steps.values()):
        return ExecutorChoice(name)
    if choice.scheduler is None:
        raise ExecutorRefused(
            "running steps on Dask needs the scheduler's address: --dask-scheduler tls://host:8786 "
            f"or {SCHEDULER_VARIABLE}"
        )
    check_scheduler_address(choice.scheduler, insecure=insecure)
    return choice


def check_scheduler_address(address: str, *, insecure: bool) -> None:
    """Refuse a scheduler on another machine reached without TLS, unless ``insecure``: steps' work
    and environment variables travel to it."""
    scheme, _, rest = address.rpartition("://")
    scheme = scheme or "tcp"
    host = urlsplit(f"//{rest}").hostname
    if not host:
        raise ExecutorRefused(f"--dask-scheduler: {address!r} is not a scheduler address (tls://host:8786)")
    if scheme in ("tls", "inproc") or insecure or _is_local(host):
        return
    raise ExecutorRefused(
        f"the Dask scheduler {address} is on another machine and is reached without TLS: use "
        "tls:// with certificates in Dask's configuration, or pass --insecure to accept it"
    )


def _is_local(host: str) -> bool:
    if host in _LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_executor(
    choice: ExecutorChoice, workspace: Workspace, workflow: Workflow, repo: Repository
) -> Executor:
    """The executor ``choice`` names, over ``workspace``. Raises ExecutorUnavailable when Dask is
    asked for and `distributed` is not installed."""
    local = LocalExecutor(workspace)
    if choice.scheduler is None:
        return local
    try:
        # Deferred: distributed takes about a second to import, and only Dask runs need it.
        from treeflow.core.remote.dask_executor import DaskExecutor
    except ImportError as exc:
        raise ExecutorUnavailable(
            f"running steps on Dask needs the `distributed` package ({exc.name or exc} is missing): "
            f"{INSTALL_DASK}"
        ) from exc
    return DaskExecutor(local, repo, workflow, choice)

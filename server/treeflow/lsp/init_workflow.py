"""`treeflow.initWorkflow`: a starter treeflow.yml written into a workspace folder, from what the
repository there already runs (treeflow.core.starter)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import anyio
from pygls.exceptions import JsonRpcInvalidParams
from pygls.uris import from_fs_path, to_fs_path

from treeflow.core.spec import WorkflowError, load_workflow
from treeflow.core.starter import WorkflowExists, write_starter
from treeflow.lsp.protocol import InitWorkflowArgs, InitWorkflowResult
from treeflow.quoting import quoted


async def init_workflow(args: InitWorkflowArgs, folders: Sequence[Path]) -> InitWorkflowResult:
    folder = _workspace_folder(args.folder, folders)
    try:
        written = await anyio.to_thread.run_sync(write_starter, folder)
    except WorkflowExists as exc:
        steps = await anyio.to_thread.run_sync(_steps, exc.path)
        return InitWorkflowResult(uri=_uri(exc.path), created=False, steps=steps, sources=[])
    except OSError as exc:
        message = f"treeflow.initWorkflow: cannot write in {folder}: {exc.strerror}"
        raise JsonRpcInvalidParams(message) from None
    steps = await anyio.to_thread.run_sync(_steps, written.path)
    sources = list(written.starter.sources)
    return InitWorkflowResult(uri=_uri(written.path), created=True, steps=steps, sources=sources)


def _workspace_folder(given: str | None, folders: Sequence[Path]) -> Path:
    """The workspace folder ``given`` names; a workflow is never written anywhere else."""
    if not folders:
        raise JsonRpcInvalidParams("treeflow.initWorkflow: open a folder first")
    if not given:
        return folders[0]
    path = to_fs_path(given) if given.startswith("file:") else given
    wanted = Path(path).resolve() if path else None
    for folder in folders:
        if folder.resolve() == wanted:
            return folder
    raise JsonRpcInvalidParams(f"treeflow.initWorkflow: {quoted(given)} is not a workspace folder")


def _steps(path: Path) -> list[str]:
    try:
        return list(load_workflow(path).steps) if path.is_file() else []
    except WorkflowError:
        return []


def _uri(path: Path) -> str:
    return from_fs_path(str(path)) or path.as_uri()

"""LSP methods of the treeflow server: each parses its parameters, calls the engine, and returns.

- `workspace/executeCommand`: treeflow.listWorkflows, treeflow.run, treeflow.cancel,
  treeflow.resume, treeflow.listRuns, treeflow.getRun
- `textDocument/didOpen`, `didChange`, `didClose`: diagnostics for workflow files
- `textDocument/codeLens`: "Run workflow" and "Run step <id>"


The engine is imported inside the handlers, not at the top: an editor waits for the answer to
`initialize` before it shows anything, and that answer needs none of it. The first handler to
run (`initialized`, which recovers crashed runs) loads it right after.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams
from pygls.uris import from_fs_path, to_fs_path

from treeflow.lsp.server import TreeflowServer

if TYPE_CHECKING:
    from treeflow.core.git import Repository


def register(server: TreeflowServer) -> None:
    @server.command("treeflow.listWorkflows")
    async def list_workflows(ls: TreeflowServer, *args: Any) -> list[dict[str, Any]]:
        return [_describe_workflow(path) for path in _workflow_files(ls)]

    @server.command("treeflow.run")
    async def run(ls: TreeflowServer, *args: Any) -> dict[str, str]:
        params = _object_argument(args, "treeflow.run", "{workflow, steps?}")
        workflow = params.get("workflow")
        if not isinstance(workflow, str) or not workflow:
            raise JsonRpcInvalidParams("treeflow.run needs `workflow`: the URI or path of a workflow file")
        steps = params.get("steps") or []
        if not isinstance(steps, list) or not all(isinstance(step, str) for step in steps):
            raise JsonRpcInvalidParams("treeflow.run: `steps` must be a list of step ids")
        from treeflow.core.spec import WorkflowError
        from treeflow.lsp.supervisor import RunRequestError

        path = _path_of(workflow)
        if not path.is_file():
            raise JsonRpcInvalidParams(f"treeflow.run: no workflow file at {path}")
        try:
            run_id = await ls.supervisor.start(path, steps)
        except WorkflowError as exc:
            raise JsonRpcInvalidParams(f"invalid workflow:\n{exc}") from exc
        except RunRequestError as exc:
            raise JsonRpcInvalidParams(str(exc)) from exc
        return {"runId": run_id}

    @server.command("treeflow.cancel")
    async def cancel(ls: TreeflowServer, *args: Any) -> dict[str, bool]:
        from treeflow.lsp.supervisor import RunRequestError

        run_id = _run_id(args, "treeflow.cancel")
        try:
            return {"cancelled": ls.supervisor.cancel(run_id)}
        except RunRequestError as exc:
            raise JsonRpcInvalidParams(str(exc)) from exc

    @server.command("treeflow.listRuns")
    async def list_runs(ls: TreeflowServer, *args: Any) -> list[dict[str, Any]]:
        from treeflow.lsp.supervisor import RunRequestError

        try:
            return await ls.supervisor.list_runs(await _repositories(ls))
        except RunRequestError as exc:
            raise JsonRpcInternalError(str(exc)) from exc

    @server.command("treeflow.getRun")
    async def get_run(ls: TreeflowServer, *args: Any) -> dict[str, Any]:
        from treeflow.lsp.supervisor import RunRequestError

        run_id = _run_id(args, "treeflow.getRun")
        try:
            return await ls.supervisor.get_run(run_id, await _repositories(ls))
        except RunRequestError as exc:
            raise JsonRpcInvalidParams(str(exc)) from exc

    @server.command("treeflow.resume")
    async def resume(ls: TreeflowServer, *args: Any) -> dict[str, str]:
        from treeflow.core.spec import WorkflowError
        from treeflow.lsp.supervisor import RunRequestError

        run_id = _run_id(args, "treeflow.resume")
        try:
            return {"runId": await ls.supervisor.resume(run_id, await _repositories(ls))}
        except WorkflowError as exc:
            raise JsonRpcInvalidParams(f"invalid workflow:\n{exc}") from exc
        except RunRequestError as exc:
            raise JsonRpcInvalidParams(str(exc)) from exc

    @server.feature(types.INITIALIZED)
    async def initialized(ls: TreeflowServer, params: types.InitializedParams) -> None:
        await ls.supervisor.recover(await _repositories(ls))

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    async def folders_changed(ls: TreeflowServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
        ls.repositories = None
        await ls.supervisor.recover(await _repositories(ls))

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: TreeflowServer, params: types.DidOpenTextDocumentParams) -> None:
        _publish(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: TreeflowServer, params: types.DidChangeTextDocumentParams) -> None:
        _publish(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: TreeflowServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        if _is_workflow_uri(uri):
            ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(types.TEXT_DOCUMENT_CODE_LENS)
    def code_lens(ls: TreeflowServer, params: types.CodeLensParams) -> list[types.CodeLens]:
        uri = params.text_document.uri
        if not _is_workflow_uri(uri):
            return []
        from treeflow.lsp.documents import code_lenses

        document = ls.workspace.get_text_document(uri)
        return code_lenses(document.source, Path(document.path), uri)


def _publish(ls: TreeflowServer, uri: str) -> None:
    if not _is_workflow_uri(uri):
        return
    from treeflow.lsp.documents import diagnostics

    document = ls.workspace.get_text_document(uri)
    found = diagnostics(document.source, Path(document.path))
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=found))


def _is_workflow_uri(uri: str) -> bool:
    from treeflow.lsp.documents import is_workflow_file

    path = to_fs_path(uri)
    return path is not None and is_workflow_file(Path(path))


def _path_of(workflow: str) -> Path:
    if workflow.startswith("file:"):
        path = to_fs_path(workflow)
        if path is None:
            raise JsonRpcInvalidParams(f"not a file URI: {workflow}")
        return Path(path)
    return Path(workflow)


def _object_argument(args: tuple[Any, ...], command: str, shape: str) -> dict[str, Any]:
    if len(args) != 1 or not isinstance(args[0], dict):
        raise JsonRpcInvalidParams(f"{command} takes one argument, an object {shape}")
    return args[0]


def _run_id(args: tuple[Any, ...], command: str) -> str:
    run_id = _object_argument(args, command, "{runId}").get("runId")
    if not isinstance(run_id, str) or not run_id:
        raise JsonRpcInvalidParams(f"{command} needs `runId`")
    return run_id


def _folders(ls: TreeflowServer) -> list[Path]:
    folders = [to_fs_path(folder.uri) for folder in ls.workspace.folders.values()]
    if not folders and ls.workspace.root_path:
        folders = [ls.workspace.root_path]
    return [Path(folder) for folder in folders if folder is not None]


async def _repositories(ls: TreeflowServer) -> list[Repository]:
    """The git repositories of the workspace folders (folders outside git have no runs), found once
    per set of folders: asking git costs more than answering `treeflow.listRuns` itself."""
    from treeflow.core.git import NotARepository, open_repository

    if ls.repositories is None:
        repos: dict[Path, Repository] = {}
        for folder in _folders(ls):
            try:
                repo = await open_repository(folder)
            except NotARepository:
                continue
            repos.setdefault(repo.common_dir, repo)
        ls.repositories = list(repos.values())
    return ls.repositories


def _workflow_files(ls: TreeflowServer) -> list[Path]:
    found: list[Path] = []
    for root in _folders(ls):
        found.extend(root / name for name in ("treeflow.yml", "treeflow.yaml") if (root / name).is_file())
        nested = root / ".treeflow"
        if nested.is_dir():
            found.extend(sorted(p for p in nested.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file()))
    return found


def _describe_workflow(path: Path) -> dict[str, Any]:
    from treeflow.core.spec import WorkflowError, load_workflow

    uri = from_fs_path(str(path)) or str(path)
    try:
        workflow = load_workflow(path)
    except WorkflowError as exc:
        return {"uri": uri, "name": path.stem, "steps": [], "errors": [str(error) for error in exc.errors]}
    return {"uri": uri, "name": workflow.name, "steps": list(workflow.steps), "errors": []}

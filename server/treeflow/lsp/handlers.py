"""LSP methods of the treeflow server: each parses its parameters, calls the engine, and returns.

- `workspace/executeCommand`: treeflow.listWorkflows, treeflow.run, treeflow.cancel,
  treeflow.resume, treeflow.approve, treeflow.listRuns, treeflow.getRun; treeflow.diff, treeflow.apply,
  treeflow.undoApply, treeflow.discard, treeflow.readFile (through treeflow.lsp.review),
  treeflow.agentTranscript, treeflow.initWorkflow (through treeflow.lsp.init_workflow)
- `initialize`: the client's `initializationOptions` (`InitializationOptions` in treeflow.lsp.protocol)
- `textDocument/didOpen`, `didChange`, `didClose`: diagnostics for workflow files the client has open
- `textDocument/codeLens`: "Run workflow" and "Run step <id>", for open workflow files of the workspace
- `textDocument/codeAction`: quick fixes for "did you mean" diagnostics (treeflow.lsp.quick_fixes)
- completion, hover, step ids, symbols, folding and selection ranges: treeflow.lsp.authoring

What the server reads for a client is bounded by treeflow.lsp.scope: a run only for a file inside
the workspace folders, a file's content quoted only if it is a workflow.

Commands take and return the classes of `treeflow.lsp.protocol`. To add one: its argument and
result classes there and in editor-client/src/protocol.ts, a handler here, an entry in COMMANDS.

The engine is imported inside the handlers, never at the top, by the one rule of deferred imports
(see treeflow.cli.entry): a plain typed import in the function that needs it. An editor waits for
the answer to `initialize` before it shows anything, and the modules these handlers load (the
supervisor, documents, progress, git and spec: about 65 ms; the protocol classes: about 30 ms more)
are not needed for it. The first handler to run (`initialized`, which recovers crashed runs) loads
them right after. tests/cli/test_start_up.py holds this.
"""

from __future__ import annotations

import asyncio
import functools
import typing
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams
from pygls.uris import from_fs_path, to_fs_path

from treeflow.lsp import authoring
from treeflow.lsp.server import TreeflowServer
from treeflow.quoting import quoted

# How long diagnostics wait after a change, for the requests the same keystroke sent.
CHECK_AFTER_CHANGE_S = 0.03

if TYPE_CHECKING:
    from pygls.workspace import TextDocument

    from treeflow.core.git import Repository
    from treeflow.lsp.protocol import (
        AgentTranscript,
        ApplyArgs,
        ApplyResult,
        ApproveArgs,
        ApproveResult,
        CancelResult,
        DiffArgs,
        DiffResult,
        DiscardArgs,
        DiscardResult,
        FileContent,
        InitWorkflowArgs,
        InitWorkflowResult,
        ReadFileArgs,
        ResumeArgs,
        RunArgs,
        RunIdArgs,
        RunPayload,
        RunStarted,
        StepArgs,
        UndoArgs,
        UndoResult,
        WorkflowInfo,
    )

CommandHandler = Callable[..., Awaitable[object]]
ArgsT = TypeVar("ArgsT")
ResultT = TypeVar("ResultT")


async def list_workflows(ls: TreeflowServer) -> list[WorkflowInfo]:
    return [_describe_workflow(ls, path) for path in _workflow_files(ls)]


async def run(ls: TreeflowServer, args: RunArgs) -> RunStarted:
    from treeflow.core.spec import WorkflowError
    from treeflow.lsp.protocol import RunStarted
    from treeflow.lsp.scope import WORKFLOW_RULE, is_workflow
    from treeflow.lsp.supervisor import RunRequestError

    path = _workflow_path(ls, args.workflow)
    try:
        run_id = await ls.supervisor.start(path, args.steps)
    except WorkflowError as exc:
        if not is_workflow(path):
            # Its errors would quote what the file holds, and it may be anything the client named.
            message = f"treeflow.run: {quoted(args.workflow)} is not a workflow: {WORKFLOW_RULE}"
            raise JsonRpcInvalidParams(message) from None
        raise JsonRpcInvalidParams(f"invalid workflow:\n{exc}") from exc
    except RunRequestError as exc:
        raise JsonRpcInvalidParams(str(exc)) from exc
    return RunStarted(run_id=run_id)


async def cancel(ls: TreeflowServer, args: RunIdArgs) -> CancelResult:
    from treeflow.lsp.protocol import CancelResult
    from treeflow.lsp.supervisor import RunRequestError

    try:
        return CancelResult(cancelled=ls.supervisor.cancel(args.run_id))
    except RunRequestError as exc:
        raise JsonRpcInvalidParams(str(exc)) from exc


async def resume(ls: TreeflowServer, args: ResumeArgs) -> RunStarted:
    from treeflow.core.spec import WorkflowError
    from treeflow.lsp.protocol import RunStarted
    from treeflow.lsp.supervisor import RunRequestError

    try:
        repos = await _repositories(ls)
        return RunStarted(run_id=await ls.supervisor.resume(args.run_id, repos, rebase=args.rebase))
    except WorkflowError as exc:
        raise JsonRpcInvalidParams(f"invalid workflow:\n{exc}") from exc
    except RunRequestError as exc:
        raise JsonRpcInvalidParams(str(exc)) from exc


async def approve(ls: TreeflowServer, args: ApproveArgs) -> ApproveResult:
    from treeflow.core.spec import WorkflowError
    from treeflow.lsp.protocol import ApproveResult, approval_state
    from treeflow.lsp.supervisor import RunRequestError

    try:
        repos = await _repositories(ls)
        approval, resumed = await ls.supervisor.approve(
            args.run_id, args.step_id, repos, approve=args.approve, note=args.message
        )
    except WorkflowError as exc:
        raise JsonRpcInvalidParams(f"decision recorded, but the run cannot go on:\n{exc}") from exc
    except RunRequestError as exc:
        raise JsonRpcInvalidParams(str(exc)) from exc
    state = approval_state(approval.to_json())
    assert state is not None
    return ApproveResult(approval=state, resumed=resumed)


async def list_runs(ls: TreeflowServer) -> list[RunPayload]:
    from treeflow.lsp.supervisor import RunRequestError

    try:
        return await ls.supervisor.list_runs(await _repositories(ls))
    except RunRequestError as exc:
        raise JsonRpcInternalError(str(exc)) from exc


async def get_run(ls: TreeflowServer, args: RunIdArgs) -> RunPayload:
    from treeflow.lsp.supervisor import RunRequestError

    try:
        return await ls.supervisor.get_run(args.run_id, await _repositories(ls))
    except RunRequestError as exc:
        raise JsonRpcInvalidParams(str(exc)) from exc


async def diff(ls: TreeflowServer, args: DiffArgs) -> DiffResult:
    from treeflow.lsp import review

    return await _reviewed(ls, review.diff, args)


async def apply(ls: TreeflowServer, args: ApplyArgs) -> ApplyResult:
    from treeflow.lsp import review

    return await _reviewed(ls, review.apply, args)


async def undo_apply(ls: TreeflowServer, args: UndoArgs) -> UndoResult:
    from treeflow.lsp import review

    return await _reviewed(ls, review.undo, args)


async def discard(ls: TreeflowServer, args: DiscardArgs) -> DiscardResult:
    from treeflow.lsp import review

    return await _reviewed(ls, review.discard, args)


async def read_file(ls: TreeflowServer, args: ReadFileArgs) -> FileContent:
    from treeflow.lsp import review

    return await _reviewed(ls, review.read_file, args)


async def agent_transcript(ls: TreeflowServer, args: StepArgs) -> AgentTranscript:
    from treeflow.lsp import transcripts
    from treeflow.lsp.protocol import RunIdArgs

    run = await get_run(ls, RunIdArgs(args.run_id))
    try:
        return await transcripts.agent_transcript(run, args.step_id)
    except transcripts.TranscriptError as exc:
        raise JsonRpcInvalidParams(str(exc)) from exc


async def init_workflow(ls: TreeflowServer, args: InitWorkflowArgs) -> InitWorkflowResult:
    from treeflow.lsp.init_workflow import init_workflow

    return await init_workflow(args, _folders(ls))


async def _reviewed(
    ls: TreeflowServer,
    action: Callable[[list[Repository], ArgsT], Awaitable[ResultT]],
    args: ArgsT,
) -> ResultT:
    """``action`` on the workspace's repositories, once crashed runs are recovered (until then
    the journal calls them running); its refusals as InvalidParams."""
    from treeflow.lsp.review import ReviewRequestError

    await ls.supervisor.wait_recovered()
    try:
        return await action(await _repositories(ls), args)
    except ReviewRequestError as exc:
        raise JsonRpcInvalidParams(str(exc)) from exc


# `workspace/executeCommand`: each handler takes the server and, if the command has one, its
# argument as a class of treeflow.lsp.protocol, and returns a protocol class (or a list of them).
COMMANDS: dict[str, CommandHandler] = {
    "treeflow.listWorkflows": list_workflows,
    "treeflow.run": run,
    "treeflow.cancel": cancel,
    "treeflow.resume": resume,
    "treeflow.approve": approve,
    "treeflow.listRuns": list_runs,
    "treeflow.getRun": get_run,
    "treeflow.diff": diff,
    "treeflow.apply": apply,
    "treeflow.undoApply": undo_apply,
    "treeflow.discard": discard,
    "treeflow.readFile": read_file,
    "treeflow.agentTranscript": agent_transcript,
    "treeflow.initWorkflow": init_workflow,
}


@functools.cache
def command_types(handler: CommandHandler) -> tuple[type | None, Any]:
    """The argument class of a command handler (None if it takes none) and its result type."""
    from treeflow.lsp import protocol

    hints = typing.get_type_hints(handler, localns=vars(protocol))
    parameters = [name for name in hints if name != "return"]
    argument = hints[parameters[1]] if len(parameters) > 1 else None
    return argument, hints["return"]


def _executor(name: str, handler: CommandHandler) -> Callable[..., Awaitable[Any]]:
    """What pygls calls for ``name``: the raw arguments parsed into the handler's argument class
    (pygls' own conversion would answer a missing argument with its arity, not with what to
    send), and the handler's result in its JSON form."""

    async def execute(ls: TreeflowServer, *arguments: Any) -> Any:
        from treeflow.lsp.protocol import ArgumentError, parse_argument, to_json

        argument_type, _ = command_types(handler)
        if argument_type is None:
            return to_json(await handler(ls))
        try:
            parsed: object = parse_argument(name, argument_type, arguments)
        except ArgumentError as exc:
            raise JsonRpcInvalidParams(str(exc)) from exc
        return to_json(await handler(ls, parsed))

    return execute


def register(server: TreeflowServer) -> None:
    for name, handler in COMMANDS.items():
        server.command(name)(_executor(name, handler))

    @server.feature(types.INITIALIZE)
    def initialize(ls: TreeflowServer, params: types.InitializeParams) -> None:
        ls.initialization_options = params.initialization_options

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

    # Documents whose diagnostics are due once the messages that follow their change are handled.
    publishing: set[str] = set()

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: TreeflowServer, params: types.DidChangeTextDocumentParams) -> None:
        # A completion request sent with a keystroke is answered before the file is checked (the
        # check reads the whole file), even when it arrives a moment after the change, and a burst
        # of changes is checked once, as it stands after the last of them.
        uri = params.text_document.uri
        if uri not in publishing:
            publishing.add(uri)
            asyncio.get_running_loop().call_later(CHECK_AFTER_CHANGE_S, publish_latest, ls, uri)

    def publish_latest(ls: TreeflowServer, uri: str) -> None:
        publishing.discard(uri)
        _publish(ls, uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: TreeflowServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        if _is_workflow_uri(uri):
            ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(types.TEXT_DOCUMENT_CODE_LENS)
    def code_lens(ls: TreeflowServer, params: types.CodeLensParams) -> list[types.CodeLens]:
        uri = params.text_document.uri
        document = _open_workflow(ls, uri)
        # A lens runs the file: none for one that treeflow.run would refuse.
        if document is None or not _in_workspace(ls, Path(document.path)):
            return []
        from treeflow.lsp.documents import code_lenses

        return code_lenses(document.source, Path(document.path), uri)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
    )
    def code_action(ls: TreeflowServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        document = _open_workflow(ls, uri)
        if document is None:
            return []
        from treeflow.lsp.quick_fixes import quick_fixes

        return quick_fixes(uri, document.lines, params.context.diagnostics)

    authoring.register(server, _open_workflow)


def _publish(ls: TreeflowServer, uri: str) -> None:
    document = _open_workflow(ls, uri)
    if document is None:
        return
    from treeflow.lsp.documents import diagnostics

    found = diagnostics(document.source, Path(document.path))
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=found))


def _open_workflow(ls: TreeflowServer, uri: str) -> TextDocument | None:
    """The workflow file at ``uri`` as the client sent it, if it has it open.

    A document the client has not opened would be read from disk, wherever ``uri`` points (and
    a FIFO there would block the server): it gets nothing.
    """
    if not _is_workflow_uri(uri):
        return None
    document: TextDocument | None = ls.workspace.text_documents.get(unquote(uri))
    return document


def _is_workflow_uri(uri: str) -> bool:
    from treeflow.lsp.scope import is_workflow_name

    path = to_fs_path(uri)
    return path is not None and is_workflow_name(Path(path))


def _in_workspace(ls: TreeflowServer, path: Path) -> bool:
    from treeflow.lsp.scope import OutsideWorkspace, resolve_in_workspace

    try:
        resolve_in_workspace(path, _folders(ls))
    except OutsideWorkspace:
        return False
    return True


def _workflow_path(ls: TreeflowServer, workflow: str) -> Path:
    """The file ``workflow`` names, symlinks resolved, if it is inside a workspace folder."""
    from treeflow.lsp.scope import OutsideWorkspace, resolve_in_workspace

    try:
        path = resolve_in_workspace(_path_of(workflow), _folders(ls))
    except OutsideWorkspace as exc:
        raise JsonRpcInvalidParams(f"treeflow.run: {exc}") from None
    try:
        is_file = path.is_file()
    except OSError as exc:  # a name too long for the system, say
        raise JsonRpcInvalidParams(
            f"treeflow.run: no workflow file at {quoted(workflow)}: {exc.strerror}"
        ) from None
    if not is_file:
        raise JsonRpcInvalidParams(f"treeflow.run: no workflow file at {quoted(workflow)}")
    return path


def _path_of(workflow: str) -> Path:
    if workflow.startswith("file:"):
        path = to_fs_path(workflow)
        if path is None:
            raise JsonRpcInvalidParams(f"not a file URI: {quoted(workflow)}")
        return Path(path)
    return Path(workflow)


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


def _describe_workflow(ls: TreeflowServer, path: Path) -> WorkflowInfo:
    from treeflow.core.matrix import written_id, written_ids
    from treeflow.core.spec import WorkflowError, load_workflow
    from treeflow.core.spec_fix_loop import fixer_ids
    from treeflow.lsp.protocol import WorkflowInfo
    from treeflow.lsp.scope import OutsideWorkspace, resolve_in_workspace

    uri = from_fs_path(str(path)) or str(path)
    try:
        workflow = load_workflow(resolve_in_workspace(path, _folders(ls)))
    except OutsideWorkspace as exc:  # a symlink to a file elsewhere
        return WorkflowInfo(uri=uri, name=path.stem, steps=[], errors=[str(exc)])
    except WorkflowError as exc:
        return WorkflowInfo(uri=uri, name=path.stem, steps=[], errors=[str(error) for error in exc.errors])
    # A matrix step is offered once, by its id, which runs every combination of it; a fixer, which
    # runs only inside the fix loops of the steps it fixes, is not offered.
    fixers = fixer_ids(workflow.steps)
    steps = [step_id for step_id in written_ids(workflow.steps) if step_id not in fixers]
    needs: dict[str, list[str]] = {}
    for step_id, step in workflow.steps.items():
        if written_id(step_id) in fixers:
            continue
        needed = needs.setdefault(written_id(step_id), [])
        needed.extend(need for need in written_ids(step.needs) if need not in needed)
    return WorkflowInfo(uri=uri, name=workflow.name, steps=steps, errors=[], needs=needs)

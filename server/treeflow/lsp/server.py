"""`treeflow serve`: the language server over stdio, and its life cycle.

stdin and stdout are wrapped in asyncio pipe transports rather than pygls' blocking stdio, so that
a client that stops reading fills a buffer the server can see (and coalesce against) instead of
blocking the event loop, and so that reading can be cancelled at `exit`. When the client sends
`exit` or closes stdin, every run is cancelled and cleaned up before the process ends.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Generator
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar

import anyio
import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcInvalidRequest
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
    RPCRequest,
)
from pygls.protocol.language_server import lsp_method

from treeflow import __version__
from treeflow.lsp.framing import read_frames
from treeflow.lsp.intake import Dropped, Refusal, read_envelope, shown
from treeflow.quoting import quoted

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from treeflow.core.git import Repository
    from treeflow.lsp.protocol import InitializationOptions
    from treeflow.lsp.supervisor import Supervisor

log = logging.getLogger("treeflow")

SHUTDOWN_GRACE_S = 4.0
# How long a request still being handled when the client goes may take to finish on its own.
HANDLER_GRACE_S = 1.0
# What is still buffered for the client when the server stops gets this long to go out.
DRAIN_S = 0.5


class PipeWriter:
    """pygls' writer interface over an asyncio write transport (never blocks the loop)."""

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._transport.close()

    def backlog(self) -> int:
        return self._transport.get_write_buffer_size()

    async def drain(self) -> None:
        """Wait until the client has taken everything written so far."""
        # Transports signal only crossing their high-water mark, not an empty buffer; so poll.
        while self.backlog() and not self._transport.is_closing():  # noqa: ASYNC110
            await anyio.sleep(0.01)


class TreeflowProtocol(LanguageServerProtocol):
    def receive(self, body: bytes) -> None:
        """Take one message body from the client: every request gets an answer, whatever it holds."""
        envelope = read_envelope(body)
        if isinstance(envelope, Refusal):
            self._refuse(envelope)
        elif isinstance(envelope, Dropped):
            log.warning("message dropped: %s", envelope.reason)
        else:
            message = self.structure_message(envelope)
            if isinstance(message, Refusal):
                self._refuse(message)
            elif message is not None:
                self.handle_message(message)

    def structure_message(self, data: dict[str, Any]) -> Any:
        """``data``, checked by read_envelope, as the message class of its method.

        pygls' own logs a traceback holding the message and raises, which would leave a request
        unanswered; a request whose params do not fit its method gets InvalidParams instead, and a
        notification or response that does not fit is dropped with one log line.
        """
        method = data.get("method")
        try:
            if isinstance(method, str):
                message_type = self.get_message_type(method)
                if message_type is not None and "id" in data and "id" not in attrs.fields_dict(message_type):
                    # pygls would take it as the notification and drop the id: no answer would come.
                    not_request = JsonRpcInvalidRequest(f"{quoted(method)} is a notification: it takes no id")
                    return Refusal(data["id"], not_request, quoted(method))
                if message_type is not None:
                    return self._converter.structure(data, message_type)
                # A method of no known type: pygls answers MethodNotFound, or passes it to a handler.
                params = data.get("params")
                if "id" in data:
                    return JsonRPCRequestMessage(data["id"], method, data["jsonrpc"], params)
                return JsonRPCNotification(method, data["jsonrpc"], params)
            if "error" in data:
                return self._converter.structure(data, types.ResponseErrorMessage)
            response_type = self._result_types.pop(data["id"], None) or JsonRPCResponseMessage
            return self._converter.structure(data, response_type)
        except Exception:  # cattrs' errors for any shape of input; none of them is a fault here
            received = shown(data.get("params"))
            if isinstance(method, str) and "id" in data:
                error = JsonRpcInvalidParams(f"{quoted(method)}: params do not fit the method")
                return Refusal(data["id"], error, received)
            log.warning("message dropped: %s does not fit its method: %s", quoted(str(method)), received)
            return None

    def handle_message(self, message: Any) -> None:
        # After `shutdown`, pygls drops requests without an answer; LSP answers them with an error.
        if self._shutdown and isinstance(message, RPCRequest):
            error = JsonRpcInvalidRequest("the server is shutting down")
            self._refuse(Refusal(message.id, error, quoted(message.method)))
            return
        super().handle_message(message)

    def _refuse(self, refusal: Refusal) -> None:
        log.info("request refused: %s: %s", refusal.error.message, refusal.received)
        self._send_data(refusal.response())

    @lsp_method(types.SHUTDOWN)
    def lsp_shutdown(self, *args: Any) -> Generator[Any, Any, None]:
        # pygls cancels the requests in flight here, iterating the very dict their ending changes;
        # treeflow lets them finish, and `exit` gives them a moment before it cancels them.
        self._shutdown = True
        yield from ()

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args: Any) -> Generator[Any, Any, None]:
        # pygls ends the process from inside the event loop on `exit`; treeflow stops reading
        # instead, so that runs are cancelled and cleaned up first.
        server = self._server
        assert isinstance(server, TreeflowServer)
        server.request_exit(0 if self._shutdown else 1)
        yield from ()


class TreeflowServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("treeflow", __version__, protocol_cls=TreeflowProtocol)
        self.exit_code = 0
        self._stop_reading: Callable[[], None] = lambda: None
        self._writer: PipeWriter | None = None
        self._runs_group: TaskGroup | None = None
        self._supervisor: Supervisor | None = None
        self.repositories: list[Repository] | None = None
        # As the client sent them in `initialize`; read at first use (see `client_options`).
        self.initialization_options: object = None
        self._client_options: InitializationOptions | None = None

    @property
    def supervisor(self) -> Supervisor:
        """The runs of this server; made, and the engine imported, at first use (see handlers.py)."""
        if self._supervisor is None:
            assert self._runs_group is not None, "the server is not serving"
            from treeflow.lsp.progress import Client
            from treeflow.lsp.supervisor import ProgressHost, Supervisor

            client = Client(notify=self.protocol.notify, progress=self.send_progress, backlog=self.backlog)
            progress = ProgressHost(
                supported=self.client_supports_progress,
                create=self.create_progress,
                on_cancel=self.on_progress_cancel,
            )
            self._supervisor = Supervisor(self._runs_group, client, progress)
        return self._supervisor

    def request_exit(self, code: int) -> None:
        self.exit_code = code
        self._stop_reading()

    def report_server_error(self, error: Exception, source: Any) -> None:
        if isinstance(error, JsonRpcException):
            # The client has the answer; not a fault here.
            log.info("request refused: %s", quoted(str(error)))
        else:
            log.error("%s", quoted(str(error)))

    @property
    def client_options(self) -> InitializationOptions:
        """The client's `initializationOptions`; what in them is not understood is logged once."""
        if self._client_options is None:
            from treeflow.lsp.protocol import read_initialization_options

            self._client_options, problems = read_initialization_options(self.initialization_options)
            for problem in problems:
                log.warning("%s", quoted(problem))
        return self._client_options

    def client_supports_progress(self) -> bool:
        """Whether runs get work-done progress: the client takes it, and does not show the progress
        of runs itself (a client that does would show it twice)."""
        capabilities = self.protocol.client_capabilities
        window = capabilities.window if capabilities else None
        return bool(window and window.work_done_progress) and not self.client_options.shows_run_progress

    async def create_progress(self, token: str) -> None:
        await self.work_done_progress.create_async(token)

    def on_progress_cancel(self, token: str, callback: Callable[[], None]) -> None:
        future = self.work_done_progress.tokens.get(token)
        if future is not None:
            future.add_done_callback(lambda done: callback() if done.cancelled() else None)

    def send_progress(
        self,
        token: str,
        value: types.WorkDoneProgressBegin | types.WorkDoneProgressReport | types.WorkDoneProgressEnd,
    ) -> None:
        self.protocol.notify(types.PROGRESS, types.ProgressParams(token=token, value=value))

    def backlog(self) -> int:
        return self._writer.backlog() if self._writer else 0

    async def serve(self, stdin: BinaryIO, stdout: BinaryIO) -> int:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stdin)
        transport, _ = await loop.connect_write_pipe(asyncio.BaseProtocol, stdout)
        self._writer = PipeWriter(transport)
        self.protocol.set_writer(self._writer)
        try:
            async with anyio.create_task_group() as group:
                self._runs_group = group
                with anyio.CancelScope() as reading:
                    self._stop_reading = reading.cancel
                    group.start_soon(self._exit_on_signals)
                    assert isinstance(self.protocol, TreeflowProtocol)
                    await _read_messages(reader, self.protocol)
                log.info("client gone or exit received; stopping every run")
                await self._finish_handlers()
                if self._supervisor is not None:
                    with anyio.move_on_after(SHUTDOWN_GRACE_S):
                        await self._supervisor.stop_all()
                group.cancel_scope.cancel()
        finally:
            with anyio.move_on_after(DRAIN_S, shield=True):
                await self._writer.drain()
            self._writer.close()
        return self.exit_code

    async def _exit_on_signals(self) -> None:
        """An editor that stops its server with a signal gets the same clean stop as with `exit`."""
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGHUP, signal.SIGINT) as received:
            async for signum in received:
                log.info("received %s", signal.Signals(signum).name)
                self.request_exit(128 + signum)

    async def _finish_handlers(self) -> None:
        """Let the requests and notifications still being handled end while the loop is ours.

        pygls runs async handlers as bare asyncio tasks; left to `asyncio.run`'s final sweep, one
        cancelled inside a subprocess start or a worker thread can keep the process from exiting.
        Cancelling one makes pygls log a traceback, so each gets a moment to finish first.
        """
        handlers: list[asyncio.Task[Any]] = []
        for future in list(self.protocol._request_futures.values()):
            if isinstance(future, asyncio.Task) and not future.done():
                handlers.append(future)
        if not handlers:
            return
        _, unfinished = await asyncio.wait(handlers, timeout=HANDLER_GRACE_S)
        for handler in unfinished:
            handler.cancel()
        if unfinished:
            await asyncio.wait(unfinished, timeout=SHUTDOWN_GRACE_S)


async def _read_messages(reader: asyncio.StreamReader, protocol: TreeflowProtocol) -> None:
    """Hand each message to ``protocol`` until the input ends (or reading is cancelled)."""
    try:
        async for body in read_frames(reader):
            protocol.receive(body)
    except asyncio.IncompleteReadError:
        log.info("the client closed its end in the middle of a message")


def configure_logging(server: TreeflowServer, log_file: Path | None, verbose: bool) -> None:
    """treeflow's own log goes to the client's log (window/logMessage) and to a file; never stdout."""
    level = logging.DEBUG if verbose else logging.INFO
    root = logging.getLogger("treeflow")
    root.setLevel(level)
    root.propagate = False
    root.addHandler(_ClientLogHandler(server))
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(log_file, maxBytes=1024 * 1024, backupCount=2, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    # pygls logs every message it sends at INFO; that is noise at this volume.
    logging.getLogger("pygls").setLevel(logging.WARNING)
    for stderr_handler in logging.getLogger().handlers:
        stderr_handler.addFilter(_short_lines_for_client_input)


def _short_lines_for_client_input(record: logging.LogRecord) -> bool:
    """pygls' log lines quote what the client sent, whatever its size: each is cut short, and a
    request refused with a JSON-RPC error (bad parameters, say), which is no crash, gets one line
    and no traceback."""
    if record.exc_info and isinstance(record.exc_info[1], JsonRpcException):
        record.msg = f"request answered with an error: {record.exc_info[1]}"
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.INFO, "INFO"
    if record.name.startswith("pygls"):
        record.msg = quoted(record.getMessage())
        record.args = ()
    return True


class _ClientLogHandler(logging.Handler):
    _TYPES: ClassVar[dict[int, types.MessageType]] = {
        logging.ERROR: types.MessageType.Error,
        logging.WARNING: types.MessageType.Warning,
        logging.INFO: types.MessageType.Info,
    }

    def __init__(self, server: TreeflowServer) -> None:
        super().__init__()
        self._server = server

    def emit(self, record: logging.LogRecord) -> None:
        if self._server.protocol.writer is None:
            return
        kind = self._TYPES.get(record.levelno, types.MessageType.Log)
        try:
            self._server.window_log_message(types.LogMessageParams(type=kind, message=self.format(record)))
        except Exception:  # a log line must never take the server down
            self.handleError(record)

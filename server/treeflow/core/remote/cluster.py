"""The Dask client as treeflow uses it: a typed face over the few calls of `distributed` it makes.

`distributed` has no type annotations for most of its client, so its calls are confined here,
where each one gets the types treeflow relies on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from distributed import Client, Future, KilledWorker, Security
from distributed.client import FutureCancelledError

T = TypeVar("T")
EventHandler = Callable[[tuple[float, Any]], None]


class TaskLost(Exception):
    """Dask dropped the task: its worker died (too often), or data it needed went with a worker."""


class Task:
    """A submitted task: its key, and its answer once it has one."""

    def __init__(self, future: Future[Any]) -> None:
        self._future = future

    @property
    def key(self) -> str:
        return str(self._future.key)

    async def answer(self) -> Any:
        """What the task returned; raises what it raised, or TaskLost."""
        try:
            return await self._future
        except (KilledWorker, FutureCancelledError) as exc:
            raise TaskLost(str(exc)) from exc


class Cluster:
    """A connection to one Dask scheduler, in the caller's event loop."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @classmethod
    async def connect(cls, address: str, timeout_s: float) -> Cluster:
        """Raises OSError or TimeoutError when the scheduler cannot be reached, a `tls://` one
        without the certificates for it in Dask's configuration included."""
        if address.startswith("tls://"):
            _check_client_certificates()
        client = await Client(address, asynchronous=True, timeout=timeout_s)  # type: ignore[no-untyped-call]
        return cls(client)

    def subscribe(self, topic: str, handler: EventHandler) -> None:
        self._client.subscribe_topic(topic, handler)  # type: ignore[no-untyped-call]

    def unsubscribe(self, topic: str) -> None:
        self._client.unsubscribe_topic(topic)  # type: ignore[no-untyped-call]

    async def scatter(self, data: bytes, worker: str) -> Task:
        """``data`` held on ``worker``, for its tasks to take as an argument."""
        future = await self._client.scatter(data, workers=[worker], hash=False)  # type: ignore[no-untyped-call]
        return Task(future)

    def submit(
        self,
        function: Callable[..., T],
        *args: object,
        key: str,
        resources: Mapping[str, float] | None,
        worker: str | None,
    ) -> Task:
        """Run ``function(*args)`` on a worker with ``resources`` free (only on ``worker``, if
        given); a `Task` among ``args`` stands for its answer."""
        plain = [arg._future if isinstance(arg, Task) else arg for arg in args]
        future = self._client.submit(
            function,
            *plain,
            key=key,
            pure=False,
            resources=dict(resources) if resources else None,
            workers=[worker] if worker else None,
            allow_other_workers=False,
        )
        return Task(future)

    async def cancel(self, task: Task) -> None:
        await self._client.cancel([task._future], force=True)  # type: ignore[no-untyped-call]

    async def run_on_workers(
        self, function: Callable[..., Awaitable[T]], *args: object, worker: str | None = None
    ) -> dict[str, T]:
        """``function(*args)`` on each worker (or only ``worker``), in its event loop; the answers of
        those that gave one, by worker address."""
        answers = await self._client.run(
            function, *args, workers=[worker] if worker else None, on_error="return"
        )
        return {address: value for address, value in answers.items() if not isinstance(value, BaseException)}

    async def workers(self) -> dict[str, Mapping[str, float]]:
        """The workers the scheduler knows of now, each with the resources it offers."""
        # The client's own `scheduler_info()` is refreshed without its workers in asynchronous
        # mode, so the scheduler is asked directly.
        scheduler = self._client.scheduler
        if scheduler is None:
            raise OSError("the Dask client is not connected")
        identity = await scheduler.identity(n_workers=-1)
        workers = identity.get("workers") or {}
        return {str(address): dict(info.get("resources") or {}) for address, info in workers.items()}

    async def close(self) -> None:
        await self._client.close()  # type: ignore[no-untyped-call]


_CLIENT_TLS_KEYS = (
    ("ca_file", "distributed.comm.tls.ca-file", "DASK_DISTRIBUTED__COMM__TLS__CA_FILE"),
    ("cert", "distributed.comm.tls.client.cert", "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT"),
)


def _check_client_certificates() -> None:
    """Dask, given no certificates for a `tls://` address, fails deep in its connection code with
    a TypeError; say instead which setting is missing."""
    tls = Security().get_tls_config_for_role("client")  # type: ignore[no-untyped-call]
    missing = [f"{key} ({variable})" for field, key, variable in _CLIENT_TLS_KEYS if not tls.get(field)]
    if missing:
        raise OSError(
            "a tls:// scheduler needs the certificate authority and a client certificate (with its "
            f"key) in Dask's configuration, which has no {' and no '.join(missing)}"
        )

"""A client of Cursor's Cloud Agents REST API (v0): launch an agent, read its state, stop it.

Three endpoints of https://api.cursor.com: `POST /v0/agents` (prompt, source repository and ref,
target branch, model) answers the new agent, `CREATING`; `GET /v0/agents/{id}` answers its
`status` (`CREATING`, `RUNNING`, `FINISHED`, `ERROR`, `EXPIRED`), `summary` and `target`
(`branchName`, `url`, `prUrl`); `POST /v0/agents/{id}/stop` stops it. Requests authenticate with
the API key as the user name of HTTP Basic authentication, as Cursor's API overview says.

The standard library's HTTP client runs in a worker thread, so the event loop never waits on the
network and treeflow needs no HTTP package. The key is held in one header value and never put
into a message: what a server says back is quoted with the key blanked out, in case it echoes it.
"""

from __future__ import annotations

import base64
import json
import math
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from urllib.error import HTTPError

DEFAULT_API_URL = "https://api.cursor.com"
KEY_VARIABLE = "CURSOR_API_KEY"
URL_VARIABLE = "TREEFLOW_CURSOR_API_URL"

FINAL_STATUSES = frozenset({"FINISHED", "ERROR", "EXPIRED"})

_TIMEOUT_S = 30.0
_MAX_BODY = 1024 * 1024
_MAX_QUOTED = 300
# Answers that say the request was not carried out, so sending it again cannot do it twice.
_NOT_CARRIED_OUT = frozenset({429, 503})


@dataclass(frozen=True)
class CloudAgent:
    """An agent as the API describes it."""

    id: str
    status: str
    name: str | None = None
    summary: str | None = None
    branch: str | None = None  # where the agent pushes its work (target.branchName)
    url: str | None = None  # the agent's page in Cursor
    pr_url: str | None = None


class ApiRefused(Exception):
    """The API said no, for good: a bad key, an unknown agent, a request it does not take."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ApiUnavailable(Exception):
    """No answer this time: the network, a rate limit (429) or a server error (5xx). ``retry_after_s``
    is the server's ``Retry-After``; ``carried_out_maybe`` is False only when the request surely had
    no effect (it was refused before it was read), which makes sending it again safe."""

    def __init__(self, reason: str, retry_after_s: float | None = None, *, carried_out_maybe: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s
        self.carried_out_maybe = carried_out_maybe


class CursorCloudApi:
    def __init__(self, key: str, base_url: str = DEFAULT_API_URL, timeout_s: float = _TIMEOUT_S) -> None:
        self._key = key
        self._authorization = "Basic " + base64.b64encode(f"{key}:".encode()).decode("ascii")
        self._base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"CursorCloudApi({self._base_url!r})"

    async def launch(
        self, prompt: str, *, repository: str, ref: str, branch: str, model: str | None
    ) -> CloudAgent:
        body: dict[str, object] = {
            "prompt": {"text": prompt},
            "source": {"repository": repository, "ref": ref},
            "target": {"branchName": branch, "autoCreatePr": False},
        }
        if model is not None:
            body["model"] = model
        # Not abandoned on cancel: the answer names the agent, which is needed to stop it.
        answer = await anyio.to_thread.run_sync(self._request, "POST", "/v0/agents", body)
        return _agent_from(answer, "the launch")

    async def agent(self, agent_id: str) -> CloudAgent:
        path = f"/v0/agents/{urllib.parse.quote(agent_id, safe='')}"
        answer = await anyio.to_thread.run_sync(self._request, "GET", path, None, abandon_on_cancel=True)
        try:
            return _agent_from(answer, "the agent's state")
        except ApiRefused as exc:
            raise ApiUnavailable(str(exc), carried_out_maybe=False) from None

    async def stop(self, agent_id: str) -> None:
        path = f"/v0/agents/{urllib.parse.quote(agent_id, safe='')}/stop"
        await anyio.to_thread.run_sync(self._request, "POST", path, {}, abandon_on_cancel=True)

    def _request(self, method: str, path: str, body: Mapping[str, object] | None) -> object:
        # Deferred: urllib.request brings http.client, ssl and email with it, about 20 ms of the
        # start of every command, and only a run with a cloud step needs them.
        from http.client import HTTPException
        from urllib.error import HTTPError, URLError
        from urllib.request import Request, urlopen

        request = Request(
            self._base_url + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={
                "Authorization": self._authorization,
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": "treeflow",
            },
        )
        try:
            with urlopen(request, timeout=self._timeout_s) as response:
                raw = response.read(_MAX_BODY + 1)
        except HTTPError as exc:
            raise self._refusal(exc) from None
        except URLError as exc:
            reason = exc.reason
            refused = isinstance(reason, ConnectionRefusedError)
            raise ApiUnavailable(
                f"no answer from {self._base_url}: {self._blank(str(reason))}", carried_out_maybe=not refused
            ) from None
        except (OSError, HTTPException) as exc:
            text = self._blank(str(exc)) or type(exc).__name__
            raise ApiUnavailable(f"no answer from {self._base_url}: {text}", carried_out_maybe=True) from None
        if len(raw) > _MAX_BODY:
            raise ApiRefused(f"{method} {path}: an answer over {_MAX_BODY} bytes")
        try:
            return json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise ApiRefused(f"{method} {path}: an answer that is not JSON") from None

    def _refusal(self, error: HTTPError) -> Exception:
        code = error.code
        said = self._said(error)
        if code == 429 or code >= 500:
            what = "rate limited" if code == 429 else "server error"
            return ApiUnavailable(
                f"{what} (HTTP {code}{said})",
                _retry_after(error.headers.get("Retry-After")),
                carried_out_maybe=code not in _NOT_CARRIED_OUT,
            )
        if code in (401, 403):
            return ApiRefused(f"Cursor refused the API key in {KEY_VARIABLE} (HTTP {code}{said})", code)
        if code == 404:
            return ApiRefused(f"Cursor knows no such agent (HTTP 404{said})", code)
        return ApiRefused(f"Cursor refused the request (HTTP {code}{said})", code)

    def _said(self, error: HTTPError) -> str:
        """``: <the server's message>`` from an error's body, if it has one."""
        from http.client import HTTPException  # loaded by `_request` already

        try:
            raw = error.read(_MAX_BODY)
        except (OSError, HTTPException):
            return ""
        text = raw.decode("utf-8", errors="replace").strip()
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            parts = [str(parsed[name]) for name in ("error", "message") if isinstance(parsed.get(name), str)]
            text = ": ".join(parts) if parts else text
        text = " ".join(self._blank(text).split())
        if len(text) > _MAX_QUOTED:
            text = text[:_MAX_QUOTED] + "…"
        return f": {text}" if text else ""

    def _blank(self, text: str) -> str:
        return text.replace(self._key, "<CURSOR_API_KEY>") if self._key else text


def _agent_from(answer: object, what: str) -> CloudAgent:
    if not isinstance(answer, dict):
        raise ApiRefused(f"{what}: the API answered something that is not an agent")
    agent_id, status = answer.get("id"), answer.get("status")
    if not isinstance(agent_id, str) or not agent_id or not isinstance(status, str):
        raise ApiRefused(f"{what}: the API answered an agent without an id or a status")
    target = answer.get("target")
    target = target if isinstance(target, dict) else {}
    return CloudAgent(
        id=agent_id,
        status=status,
        name=_text(answer.get("name")),
        summary=_text(answer.get("summary")),
        branch=_text(target.get("branchName")),
        url=_text(target.get("url")),
        pr_url=_text(target.get("prUrl")),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    from email.utils import parsedate_to_datetime  # loaded by `_request` already

    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(tz=UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None

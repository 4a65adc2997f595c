"""The Cursor Cloud Agent step, `agent: {use: cursor-cloud, prompt, model?, repository?}`.

An attempt pushes the step's start commit to `treeflow/<run>/<step>-base` on the remote named by
``repository`` (default `origin`), launches a Cloud Agent on that branch through Cursor's API (key
from ``CURSOR_API_KEY``), follows it with the process's adaptive poller until it ends, then fetches
the branch the agent pushed onto the step's own branch, so that what comes after (needs, the run's
result branch) sees its commits as it sees a local step's. FINISHED succeeds, any other end fails
with the agent's own account; the agent's summary is the step's summary. A cancelled attempt (the
run cancelled, fail-fast, the step's timeout) stops the agent through the API before it ends.
treeflow's branches on the remote are removed once they have served: the base branch when the agent
has ended, the agent's branch once its commits are on the step's branch.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from types import MappingProxyType

import anyio
import yaml

from treeflow.core.agent_protocol import MAX_STATUS_TEXT
from treeflow.core.attempt import Attempt
from treeflow.core.cloud.cursor_api import (
    DEFAULT_API_URL,
    KEY_VARIABLE,
    URL_VARIABLE,
    ApiRefused,
    ApiUnavailable,
    CloudAgent,
    CursorCloudApi,
)
from treeflow.core.cloud.poller import AdaptivePoller, PollSchedule, PollTrouble, process_poller
from treeflow.core.cloud.remote_branches import (
    RemoteError,
    agent_branch,
    base_branch,
    delete_remote_branch,
    fetch_work,
    push_start,
    remote_url,
    repository_for_api,
)
from treeflow.core.model import StepStatus
from treeflow.core.outcome import StepOutcome
from treeflow.core.spec_keys import Key, Text, names
from treeflow.core.spec_reader import SpecReader
from treeflow.quoting import quoted

USE = "cursor-cloud"
CLOUD_KEYS = (
    Key(
        "use",
        "`cursor-cloud`: a Cursor Cloud Agent does the job on Cursor's machines (key from `CURSOR_API_KEY`).",
        Text(USE, MappingProxyType({USE: "Cursor Cloud Agent"}), closed=True, wording="an agent's name"),
        required=True,
    ),
    Key(
        "prompt",
        "What the agent is asked to do.",
        Text("Fix the failing test", not_blank=True),
        required=True,
    ),
    Key("model", "The model the agent uses.", Text("auto", not_blank=True), "Cursor's default"),
    Key(
        "repository",
        "The git remote the step's start is pushed to, and the agent's work fetched from.",
        Text("origin", not_blank=True, wording="a git remote"),
        "origin",
    ),
)
"""The keys of `agent: {use: cursor-cloud, …}` (see `kinds.agent_keys`)."""
_KEYS = names(CLOUD_KEYS)
_ACTIVE = frozenset({"CREATING", "RUNNING"})
# Bounds on the clean-up a cancelled or ended attempt does under a shield: it must not hold the
# run's end for long when the network is gone.
_STOP_BUDGET_S = 20.0
_CLEANUP_BUDGET_S = 30.0


@dataclass(frozen=True)
class CursorCloudSpec:
    prompt: str
    model: str | None = None
    repository: str = "origin"


def selects_cursor_cloud(block: yaml.Node) -> bool:
    """Whether an `agent:` block is `use: cursor-cloud`."""
    if not isinstance(block, yaml.MappingNode):
        return False
    for key, value in block.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "use":
            return isinstance(value, yaml.ScalarNode) and value.value == USE
    return False


def parse_cursor_cloud(block: yaml.Node, reader: SpecReader, what: str) -> CursorCloudSpec | None:
    fields = reader.mapping(block, f"{what}: agent", _KEYS)
    if fields is None:
        return None
    if "prompt" not in fields:
        reader.error(block, f"{what}: agent with `use: {USE}` needs a `prompt:`")
    prompt = reader.optional(fields, "prompt", lambda n: reader.command(n, f"{what}: agent.prompt"))
    model = reader.optional(fields, "model", lambda n: reader.command(n, f"{what}: agent.model"))
    repository = reader.optional(
        fields, "repository", lambda n: reader.command(n, f"{what}: agent.repository (a git remote)")
    )
    if prompt is None:
        return None
    return CursorCloudSpec(prompt=prompt, model=model, repository=repository or "origin")


@dataclass(frozen=True)
class _Remote:
    name: str
    repository: str  # as the API names it
    base: str  # treeflow/<run>/<step>-base


async def run_cursor_cloud(
    spec: CursorCloudSpec, attempt: Attempt, poller: AdaptivePoller | None = None
) -> StepOutcome:
    key = attempt.env.get(KEY_VARIABLE, "")
    if not key.strip():
        return _failed(
            f"{KEY_VARIABLE} is not set: a Cursor Cloud Agent step needs a Cursor API key "
            "(Cursor Dashboard → Integrations → API Keys) in that environment variable"
        )
    place = attempt.place
    if place.work_branch is None or place.start_commit is None:
        return _failed("a Cursor Cloud Agent step needs a worktree of its own; remove `worktree: false`")
    try:
        url = await remote_url(attempt.cwd, spec.repository)
    except RemoteError as exc:
        return _failed(str(exc))
    remote = _Remote(spec.repository, repository_for_api(url), base_branch(attempt.run_id, attempt.step.id))
    _note(attempt, f"pushing the step's start {place.start_commit[:10]} to {remote.base} on `{remote.name}`")
    try:
        await push_start(attempt.cwd, remote.name, place.start_commit, remote.base)
        api = CursorCloudApi(key, attempt.env.get(URL_VARIABLE) or DEFAULT_API_URL)
        return await _launch_and_follow(api, spec, attempt, remote, poller or process_poller())
    except RemoteError as exc:
        return _failed(str(exc))
    finally:
        with anyio.move_on_after(_CLEANUP_BUDGET_S, shield=True):
            problem = await delete_remote_branch(attempt.cwd, remote.name, remote.base)
            if problem is not None:
                attempt.warn(f"could not remove {remote.base} from `{remote.name}`: {problem}")


async def _launch_and_follow(
    api: CursorCloudApi, spec: CursorCloudSpec, attempt: Attempt, remote: _Remote, poller: AdaptivePoller
) -> StepOutcome:
    target = agent_branch(attempt.run_id, attempt.step.id)
    try:
        agent = await _launch(api, spec, attempt, remote, target, poller)
    except (ApiRefused, ApiUnavailable) as exc:
        return _failed(f"could not launch the Cloud Agent: {exc}")
    _note(attempt, f"Cloud Agent {agent.id} launched: {agent.url or 'no page given'}")
    attempt.progress(None, _status_message(agent))
    try:
        final = await _follow(api, agent, attempt, poller)
    except ApiRefused as exc:
        await _stop(api, agent, attempt, poller)
        return _failed(f"lost the Cloud Agent {agent.id}: {exc}")
    except BaseException:
        await _stop(api, agent, attempt, poller)
        raise
    return await _finish(final, attempt, remote, target)


async def _launch(
    api: CursorCloudApi,
    spec: CursorCloudSpec,
    attempt: Attempt,
    remote: _Remote,
    target: str,
    poller: AdaptivePoller,
) -> CloudAgent:
    """Launch the agent; a launch the API surely did not carry out (429, 503, a refused connection)
    is tried again after a growing wait, any other trouble ends the attempt."""
    schedule = PollSchedule(poller.policy, random.Random())
    while True:
        try:
            return await api.launch(
                spec.prompt, repository=remote.repository, ref=remote.base, branch=target, model=spec.model
            )
        except ApiUnavailable as exc:
            if exc.carried_out_maybe:
                raise
            wait = schedule.troubled(exc.retry_after_s)
            _note(attempt, f"launch not taken ({exc.reason}); trying again in {wait:.1f} s")
            await poller.clock.sleep(wait)


async def _follow(
    api: CursorCloudApi, agent: CloudAgent, attempt: Attempt, poller: AdaptivePoller
) -> CloudAgent:
    async def fetch() -> CloudAgent:
        try:
            return await api.agent(agent.id)
        except ApiUnavailable as exc:
            raise PollTrouble(exc.reason, exc.retry_after_s) from None

    def on_trouble(trouble: PollTrouble, wait_s: float) -> None:
        _note(attempt, f"no answer about the Cloud Agent ({trouble.reason}); asking again in {wait_s:.1f} s")

    current = agent
    async with poller.follow(fetch, agent, key=lambda answer: answer.status, on_trouble=on_trouble) as follow:
        while current.status in _ACTIVE:
            current = await follow.next_change()
            _note(attempt, f"Cloud Agent {current.status}")
            if current.status in _ACTIVE:  # the end is reported with the agent's summary
                attempt.progress(None, _status_message(current))
    return current


async def _stop(api: CursorCloudApi, agent: CloudAgent, attempt: Attempt, poller: AdaptivePoller) -> None:
    """Stop the agent, under a shield and within a bound: the attempt is ending either way."""
    with anyio.move_on_after(_STOP_BUDGET_S, shield=True) as budget:
        schedule = PollSchedule(poller.policy, random.Random())
        while True:
            try:
                await api.stop(agent.id)
            except ApiUnavailable as exc:
                await anyio.sleep(schedule.troubled(exc.retry_after_s))
                continue
            except ApiRefused as exc:
                attempt.warn(f"could not stop the Cloud Agent {agent.id}: {exc}")
                return
            _note(attempt, f"Cloud Agent {agent.id} stopped")
            return
    if budget.cancelled_caught:
        where = agent.url or "cursor.com/agents"
        attempt.warn(f"could not stop the Cloud Agent {agent.id} in time; see {where}")


async def _finish(final: CloudAgent, attempt: Attempt, remote: _Remote, target: str) -> StepOutcome:
    """Take what the ended agent pushed onto the step's branch, and its end as the outcome."""
    branch = final.branch or target
    succeeded = final.status == "FINISHED"
    summary = None if final.summary is None else quoted(final.summary, MAX_STATUS_TEXT)
    problem: str | None = None
    try:
        tip = await fetch_work(attempt.cwd, remote.name, branch)
    except RemoteError as exc:
        problem = str(exc)
    else:
        if tip is None:
            _note(attempt, f"the agent pushed no branch {branch}: the step has no work")
        else:
            _note(attempt, f"the agent's work {tip[:10]} from {branch} is on the step's branch")
            left = await delete_remote_branch(attempt.cwd, remote.name, branch)
            if left is not None:
                attempt.warn(f"could not remove {branch} from `{remote.name}`: {left}")
    attempt.progress(1.0 if succeeded and problem is None else None, _status_message(final), summary)
    if not succeeded:
        reason = quoted(final.summary, MAX_STATUS_TEXT) if final.summary else "no reason given"
        if problem is not None:
            attempt.warn(problem)
        return _failed(f"the Cloud Agent ended {final.status}: {reason}")
    if problem is not None:
        return _failed(problem)
    return StepOutcome(StepStatus.SUCCEEDED)


def _status_message(agent: CloudAgent) -> str:
    return f"Cloud Agent {agent.status.lower()}" + (f": {agent.name}" if agent.name else "")


def _note(attempt: Attempt, line: str) -> None:
    attempt.log.write(f"--- treeflow: cursor-cloud: {line} ---\n".encode())


def _failed(error: str) -> StepOutcome:
    return StepOutcome(StepStatus.FAILED, error=error)

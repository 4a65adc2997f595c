"""Cached steps: a step whose key matches an earlier success replays that work instead of running.

An entry lives in two places that already exist: the repository's git objects and the run journal.
`refs/treeflow/cache/<key>` points at a record commit whose parent is the step's result commit and
whose tree holds the step's log as a blob, so neither is ever pruned while the entry lives; the
journal's `step_cache` table says which run and step made it, its start and result commits and its
outputs, and when it was last used. On a hit, the step's changes (its start to its result) are
merged three-way onto the new start commit, without a checkout, and committed on the step's branch;
when they do not apply cleanly, the step runs. `treeflow clean` expires entries (`expire_entries`).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import anyio

from treeflow.core.cache_key import inputs_digest, step_key
from treeflow.core.expressions import ExpressionError
from treeflow.core.git import GitError, Repository, environ_without_repository, git, identity_env, run_git
from treeflow.core.git_workspace import GitWorkspace
from treeflow.core.journal.errors import JournalUnavailable
from treeflow.core.journal.schema import connect, journal_path
from treeflow.core.model import Step, Workflow
from treeflow.core.step_context import StepContext
from treeflow.core.workspace import StepPlace, StepSetupError

CACHE_REFS = "refs/treeflow/cache/"
_MERGE_TREE = ("merge-tree", "--write-tree", "--name-only", "--no-messages")
# How many entries `treeflow clean` keeps at most, the ones used last, unless told otherwise.
DEFAULT_CACHE_ENTRIES = 1000
LOG_NAME = "log"

_SELECT_ENTRY = (
    "SELECT cache_key, run_id, step_id, start_commit, result_commit, log_blob, outputs "
    "FROM step_cache WHERE cache_key = ?"
)
_INSERT_ENTRY = (
    "INSERT OR REPLACE INTO step_cache (cache_key, run_id, step_id, start_commit, result_commit, "
    "log_blob, outputs, created_at, used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_TOUCH_ENTRY = "UPDATE step_cache SET used_at = ? WHERE cache_key = ?"
_INSERT_HIT = "INSERT OR REPLACE INTO cached_steps (run_id, step_id, cached_from) VALUES (?, ?, ?)"


@dataclass(frozen=True)
class CacheEntry:
    """The work an earlier run's step left under a key: its start and result commits, its log
    (a blob id) and its outputs."""

    key: str
    run_id: str
    step_id: str
    start_commit: str
    result_commit: str
    log_blob: str | None
    outputs: Mapping[str, str]

    @property
    def source(self) -> str:
        return f"{self.run_id}/{self.step_id}"


@dataclass(frozen=True)
class CacheLookup:
    """A step's key at its start commit, and the entry found under it (None: a miss)."""

    key: str
    start: str
    entry: CacheEntry | None


@dataclass(frozen=True)
class ReplayConflict:
    """The cached work does not apply cleanly to the new start commit."""

    files: tuple[str, ...]


@dataclass(frozen=True)
class CacheHit:
    """A step's earlier work, replayed: where it is now, the entry it came from, and its log."""

    place: StepPlace
    entry: CacheEntry
    log: bytes


@dataclass(frozen=True)
class CacheMiss:
    """The step runs; ``note`` says why the entry found was not used (None: there was none)."""

    note: str | None = None


class StepCache:
    """The cache as one run uses it: keys of its steps, look-ups, replays and new entries.

    With ``reuse`` false (`--no-cache`) nothing is looked up, but what succeeds is still kept, so
    the next run can use it.
    """

    def __init__(self, repo: Repository, workspace: GitWorkspace, *, reuse: bool = True) -> None:
        self._repo = repo
        self._workspace = workspace
        self._reuse = reuse
        self._journal = journal_path(repo)
        self._keys: dict[str, str] = {}
        self._lookups: dict[str, CacheLookup] = {}
        self._identity: dict[str, str] | None = None

    async def reuse(
        self, run_id: str, step: Step, context: StepContext, workflow: Workflow
    ) -> CacheHit | CacheMiss:
        """The earlier work of ``step`` (its needs, as it takes them, ended already) replayed onto
        its start commit, when its key has an entry that applies cleanly; else why it runs."""
        try:
            lookup = await self.look_up(run_id, step, context, workflow)
        except (StepSetupError, ExpressionError):
            return CacheMiss()  # the step says so itself as it starts
        except (GitError, OSError, JournalUnavailable) as exc:
            return CacheMiss(f"its cache key could not be made ({exc})")
        self._lookups[step.id] = lookup
        entry = lookup.entry
        if entry is None:
            return CacheMiss()
        try:
            replayed = await self.replay(run_id, step, lookup)
            if isinstance(replayed, ReplayConflict):
                files = ", ".join(replayed.files)
                return CacheMiss(f"the cached work of {entry.source} conflicts here (in {files})")
            return CacheHit(replayed, entry, await self.cached_log(entry))
        except (GitError, OSError, JournalUnavailable) as exc:
            return CacheMiss(f"the cached work of {entry.source} could not be replayed ({exc})")

    async def keep(
        self,
        run_id: str,
        step_id: str,
        result_commit: str | None,
        log: Path | None,
        outputs: Mapping[str, str],
    ) -> None:
        """Keep the work of a step that succeeded after `reuse` found no entry for it (see `store`)."""
        lookup = self._lookups.pop(step_id, None)
        if lookup is not None:
            with anyio.CancelScope(shield=True):
                await self.store(run_id, step_id, lookup, result_commit, log, outputs)

    async def look_up(self, run_id: str, step: Step, context: StepContext, workflow: Workflow) -> CacheLookup:
        """The key of ``step`` (its needs, as it takes them, ended already) and the entry under it.

        Raises ExpressionError when the step's templates cannot be rendered, GitError when its start
        commit cannot be made or read, StepSetupError when its needs' work conflicts.
        """
        assert step.cache is not None
        start = await self._workspace.start_commit(run_id, step)
        needs = {
            need: self._keys.get(need)
            or "outputs " + json.dumps(dict(context.needs[need].outputs), sort_keys=True)
            for need in step.needs
        }
        key = step_key(
            kind=step.kind,
            spec=context.render_spec(step.spec),
            env={**workflow.env, **context.render_env(step.env)},
            setup=workflow.setup.run,
            inputs=await inputs_digest(self._repo.root, start, step.cache.inputs),
            needs=needs,
        )
        self._keys[step.id] = key
        entry = await anyio.to_thread.run_sync(self._read_entry, key) if self._reuse else None
        return CacheLookup(key, start, entry)

    def _read_entry(self, key: str) -> CacheEntry | None:
        with connect(self._journal) as connection:
            row = connection.execute(_SELECT_ENTRY, (key,)).fetchone()
        if row is None:
            return None
        return CacheEntry(
            key=row["cache_key"],
            run_id=row["run_id"],
            step_id=row["step_id"],
            start_commit=row["start_commit"],
            result_commit=row["result_commit"],
            log_blob=row["log_blob"],
            outputs=json.loads(row["outputs"]),
        )

    async def replay(self, run_id: str, step: Step, lookup: CacheLookup) -> StepPlace | ReplayConflict:
        """Commit the entry's changes onto the step's start commit, on its branch, and note the hit."""
        entry = lookup.entry
        assert entry is not None
        if entry.start_commit == lookup.start:
            # Nothing before it changed (a clean checkout at the same commit): the same work, as is.
            work: str | None = None if entry.result_commit == entry.start_commit else entry.result_commit
        else:
            merged = await self._replayed_tree(entry, lookup.start)
            if isinstance(merged, ReplayConflict):
                return merged
            start_tree, tree = merged
            work = None if tree == start_tree else await self._commit(step, run_id, entry, tree, lookup.start)
        place = await self._workspace.adopt_work(run_id, step, lookup.start, work)
        await anyio.to_thread.run_sync(self._note_hit, run_id, step.id, entry)
        return place

    async def _commit(self, step: Step, run_id: str, entry: CacheEntry, tree: str, start: str) -> str:
        message = (
            f"treeflow: work of step {step.id}, replayed from the cache\n\n"
            f"Run {run_id}; the work of step {entry.step_id} of run {entry.run_id}."
        )
        return await git(
            self._repo.root,
            "commit-tree",
            "--no-gpg-sign",
            tree,
            "-p",
            start,
            "-m",
            message,
            env=await self._identity_env(),
        )

    async def _replayed_tree(self, entry: CacheEntry, start: str) -> tuple[str, str] | ReplayConflict:
        """The start's tree and the tree of the entry's changes merged onto it, three-way with the
        entry's own start as the base; the files that conflict when they do not merge cleanly."""
        root = self._repo.root
        trees = await git(
            root,
            "rev-parse",
            f"{entry.start_commit}^{{tree}}",
            f"{start}^{{tree}}",
            f"{entry.result_commit}^{{tree}}",
        )
        base_tree, start_tree, result_tree = trees.split()
        if result_tree == base_tree or start_tree == result_tree:
            return start_tree, start_tree
        if start_tree == base_tree:
            return start_tree, result_tree
        # merge-tree finds the merge base itself: a side whose one parent is the entry's start makes
        # that start the base, since the entry's result descends from it.
        side = await git(
            root,
            "commit-tree",
            "--no-gpg-sign",
            start_tree,
            "-p",
            entry.start_commit,
            "-m",
            "treeflow: replay side",
            env=await self._identity_env(),
        )
        code, out, err = await run_git(root, *_MERGE_TREE, side, entry.result_commit)
        lines = out.splitlines()
        if code == 1:
            return ReplayConflict(tuple(dict.fromkeys(line for line in lines[1:] if line)))
        if code != 0:
            raise GitError(_MERGE_TREE, code, err.strip())
        return start_tree, lines[0]

    def _note_hit(self, run_id: str, step_id: str, entry: CacheEntry) -> None:
        with connect(self._journal) as connection:
            connection.execute(_TOUCH_ENTRY, (time.time(), entry.key))
            connection.execute(_INSERT_HIT, (run_id, step_id, entry.source))

    async def cached_log(self, entry: CacheEntry) -> bytes:
        """The log the entry's step wrote; empty when it wrote none."""
        if entry.log_blob is None:
            return b""
        # The log file of a step that succeeded never changes once it ended: read it while it is
        # there (until `treeflow clean` forgets its run) rather than start git.
        kept = self._repo.state_dir / "logs" / entry.run_id / f"{entry.step_id}.log"
        with contextlib.suppress(OSError):
            return await anyio.Path(kept).read_bytes()
        # Read as bytes: a log is kept byte for byte, whatever its encoding.
        done = await anyio.run_process(
            ["git", "cat-file", "blob", entry.log_blob],
            cwd=self._repo.root,
            check=False,
            env=environ_without_repository(),
        )
        return done.stdout if done.returncode == 0 else b""

    async def store(
        self,
        run_id: str,
        step_id: str,
        lookup: CacheLookup,
        result_commit: str | None,
        log: Path | None,
        outputs: Mapping[str, str],
    ) -> None:
        """Keep a succeeded step's work under its key: the objects first, then the ref that keeps
        them, then the journal's row, so an entry cut short is only ever unreferenced objects or a
        ref without a row (which `treeflow clean` removes)."""
        root = self._repo.root
        result = result_commit or lookup.start
        log_blob = None
        if log is not None and await anyio.Path(log).exists():
            log_blob = await git(root, "hash-object", "-w", "--", str(log))
        listing = f"100644 blob {log_blob}\t{LOG_NAME}\n" if log_blob else ""
        tree = await git(root, "mktree", input=listing.encode())
        record = await git(
            root,
            "commit-tree",
            "--no-gpg-sign",
            tree,
            "-p",
            result,
            "-m",
            f"treeflow: cache entry of step {step_id} of run {run_id}",
            env=await self._identity_env(),
        )
        await git(root, "update-ref", CACHE_REFS + lookup.key, record)
        row = (
            lookup.key,
            run_id,
            step_id,
            lookup.start,
            result,
            log_blob,
            json.dumps(dict(outputs), sort_keys=True),
            time.time(),
            time.time(),
        )
        await anyio.to_thread.run_sync(self._write_entry, row)

    def _write_entry(self, row: tuple[object, ...]) -> None:
        with connect(self._journal) as connection:
            connection.execute(_INSERT_ENTRY, row)

    async def _identity_env(self) -> dict[str, str]:
        if self._identity is None:
            self._identity = await identity_env(self._repo)
        return self._identity


@dataclass(frozen=True)
class ExpiredEntry:
    key: str
    source: str  # `<run_id>/<step_id>` of the step that made it, or "" for a ref without a row
    reason: str


def entries_to_expire(repo: Repository, max_age_s: float, max_entries: int) -> list[ExpiredEntry]:
    """Entries last used more than ``max_age_s`` ago, and beyond the ``max_entries`` last used."""
    cutoff = time.time() - max_age_s
    with connect(journal_path(repo)) as connection:
        rows = connection.execute(
            "SELECT cache_key, run_id, step_id, used_at FROM step_cache ORDER BY used_at DESC"
        ).fetchall()
    expired = []
    for rank, row in enumerate(rows):
        source = f"{row['run_id']}/{row['step_id']}"
        if row["used_at"] < cutoff:
            expired.append(ExpiredEntry(row["cache_key"], source, "not used within the days kept"))
        elif rank >= max_entries:
            expired.append(ExpiredEntry(row["cache_key"], source, f"more than {max_entries} entries"))
    return expired


async def expire_entries(
    repo: Repository, max_age_s: float, max_entries: int, *, dry_run: bool = False
) -> list[ExpiredEntry]:
    """Remove expired entries (see `entries_to_expire`) and cache refs that have no entry (left by
    a treeflow that died while it stored one); return what was, or with ``dry_run`` would be, removed."""
    expired = await anyio.to_thread.run_sync(entries_to_expire, repo, max_age_s, max_entries)
    known = set(await anyio.to_thread.run_sync(_known_keys, repo))
    listed = await git(repo.root, "for-each-ref", "--format=%(refname)", CACHE_REFS)
    refs = {ref.removeprefix(CACHE_REFS) for ref in listed.splitlines() if ref}
    expired.extend(ExpiredEntry(key, "", "no entry in the journal") for key in sorted(refs - known))
    if dry_run or not expired:
        return expired
    deletions = "".join(f"delete {CACHE_REFS}{entry.key}\n" for entry in expired if entry.key in refs)
    with anyio.CancelScope(shield=True):
        if deletions:
            await git(repo.root, "update-ref", "--stdin", input=deletions.encode())
        await anyio.to_thread.run_sync(_delete_rows, repo, [entry.key for entry in expired])
    return expired


def _known_keys(repo: Repository) -> list[str]:
    with connect(journal_path(repo)) as connection:
        return [row[0] for row in connection.execute("SELECT cache_key FROM step_cache")]


def _delete_rows(repo: Repository, keys: list[str]) -> None:
    with connect(journal_path(repo)) as connection:
        connection.executemany("DELETE FROM step_cache WHERE cache_key = ?", [(key,) for key in keys])

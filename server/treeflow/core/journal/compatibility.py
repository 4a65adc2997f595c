"""Which treeflow versions use a journal, and whether this one can read it.

The CLI a user runs in a terminal and the language server the editor extension brings along are
two installs of treeflow that may differ in version, and both keep their state in the same
`.git/treeflow`. The journal carries the format of everything in that folder as SQLite's
`user_version`, and a row per treeflow version that opened it. A treeflow meets three cases:

- the same format: it reads and writes as usual, and logs once which other versions share the
  journal;
- an older format (0 is a journal from before formats were kept): the schema only ever gains
  tables, so opening it brings it up to date, and the format is raised to this one's;
- a newer format: it refuses with `JournalTooNew`, naming the version that wrote it, instead of
  misreading rows whose meaning has changed.

A change to what any file under `.git/treeflow` means (a table's columns, a lock file's or a pool
claim's contents) raises `JOURNAL_FORMAT`; every command and the language server open the journal
before they touch the rest, so the refusal comes first.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from treeflow import __version__
from treeflow.core.journal.errors import JournalUnavailable

JOURNAL_FORMAT = 2

log = logging.getLogger(__name__)


class JournalTooNew(JournalUnavailable):
    """The journal was written by a newer treeflow, in a format this one does not know."""

    def __init__(self, path: Path, found_format: int, writer: str | None) -> None:
        self.path = path
        self.found_format = found_format
        self.writer = writer
        by = f"treeflow {writer}" if writer else "a newer treeflow"
        needed = f"treeflow {writer} or newer" if writer else "a newer treeflow"
        super().__init__(
            f"the run journal {path} was written by {by} (journal format {found_format}); this is "
            f"treeflow {__version__}, which reads format {JOURNAL_FORMAT}: use {needed} on this "
            "repository (the treeflow CLI and the editor extension's language server share the journal, "
            "so update the older of the two)"
        )


def stored_format(connection: sqlite3.Connection) -> int:
    row = connection.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def check_format(connection: sqlite3.Connection, path: Path) -> None:
    """Refuse a journal a newer treeflow has moved to a format this one does not know."""
    found = stored_format(connection)
    if found > JOURNAL_FORMAT:
        raise JournalTooNew(path, found, _newest_writer(connection, found))


def claim_journal(connection: sqlite3.Connection, path: Path) -> None:
    """Check the format, raise an older one to this treeflow's, and record this version.

    Runs once a process per journal, after the schema is in place.
    """
    check_format(connection, path)
    # A refusal inside the transaction leaves it open; closing the connection rolls it back.
    connection.execute("BEGIN IMMEDIATE")
    # Read again inside the transaction: another treeflow may have raised it meanwhile.
    check_format(connection, path)
    if stored_format(connection) < JOURNAL_FORMAT:
        connection.execute(f"PRAGMA user_version = {JOURNAL_FORMAT}")
    connection.execute(
        "INSERT INTO treeflow_versions (version, format, last_opened) VALUES (?, ?, ?) "
        "ON CONFLICT (version) DO UPDATE SET format = excluded.format, last_opened = excluded.last_opened",
        (__version__, JOURNAL_FORMAT, time.time()),
    )
    connection.execute("COMMIT")
    others = [
        str(row[0])
        for row in connection.execute(
            "SELECT version FROM treeflow_versions WHERE version != ? ORDER BY last_opened DESC",
            (__version__,),
        )
    ]
    if others:
        log.info(
            "the run journal %s is shared with treeflow %s; this is treeflow %s (journal format %d)",
            path,
            ", ".join(others),
            __version__,
            JOURNAL_FORMAT,
        )


def _newest_writer(connection: sqlite3.Connection, found_format: int) -> str | None:
    try:
        row = connection.execute(
            "SELECT version FROM treeflow_versions WHERE format >= ? ORDER BY format DESC, last_opened DESC",
            (found_format,),
        ).fetchone()
    except sqlite3.Error:
        # A future format may keep its versions elsewhere; the refusal stands without the name.
        return None
    return None if row is None else str(row[0])

"""Why the journal cannot be used."""


class JournalUnavailable(Exception):
    """The journal file cannot be opened: no permission, a folder in its place, not a database."""

"""Starts treeflow's language server from the extension's bundle, with whatever Python runs it.

`python treeflow_server.py` serves LSP over stdin and stdout; `python treeflow_server.py --check`
prints one JSON line (this Python's version and path, treeflow's version and where it was loaded
from, and whether YAML is read with libyaml) and exits 0 when the server can start, or says why not
on stderr with a non-zero status.

treeflow and its pure-Python dependencies are in ../libs, put first on sys.path so that packages
the interpreter has installed (another treeflow, another pygls) do not mix in. Without ../libs (a
development checkout) the interpreter's own treeflow is used. The version check comes before
anything a Python older than treeflow needs could fail on, so it stays plain old Python.
"""

import json
import os
import sys

MINIMUM = (3, 11)
EXIT_TOO_OLD = 3
EXIT_NOT_LOADABLE = 4

# The modules of treeflow's runtime dependencies (pyproject.toml), found without importing them:
# importing pygls and lsprotocol takes about as long as the server's whole start.
DEPENDENCIES = ("anyio", "yaml", "rich", "pygls", "lsprotocol", "attrs", "cattrs", "git")


def main(arguments):
    if sys.version_info[:2] < MINIMUM:
        sys.stderr.write(
            "treeflow: needs Python %d.%d or newer; %s is Python %s\n"
            % (MINIMUM[0], MINIMUM[1], sys.executable, sys.version.split()[0])
        )
        return EXIT_TOO_OLD
    libs = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "libs")
    if os.path.isdir(libs):
        sys.path.insert(0, libs)
    problem = _missing_part()
    if problem:
        sys.stderr.write("treeflow: cannot load treeflow with %s: %s\n" % (sys.executable, problem))
        return EXIT_NOT_LOADABLE
    if arguments == ["--check"]:
        import treeflow
        import yaml

        report = {
            "python": sys.version.split()[0],
            "executable": sys.executable,
            "treeflow": treeflow.__version__,
            "location": os.path.dirname(treeflow.__file__),
            # A bundle packed for one platform carries libyaml; without it YAML is read in Python.
            "libyaml": yaml.__with_libyaml__,
        }
        sys.stdout.write(json.dumps(report) + "\n")
        return 0
    from treeflow.cli import main as treeflow_main

    return treeflow_main(["serve"] + list(arguments))


def _missing_part():
    """Why treeflow could not run here, or None."""
    import importlib.util

    try:
        import sqlite3  # noqa: F401  (the journal; some Python builds leave it out)
        import treeflow  # noqa: F401
    except ImportError as exc:
        return str(exc)
    missing = [name for name in DEPENDENCIES if importlib.util.find_spec(name) is None]
    if missing:
        return "no module named %s" % ", ".join(repr(name) for name in missing)
    return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

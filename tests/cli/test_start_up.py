"""What each way into the CLI imports: the start-up the deferred imports of the CLI protect.

`serve` must answer `initialize` without the engine or rich, every other command must start
without pygls and lsprotocol, and a run whose output is not a terminal without rich.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

LANGUAGE_SERVER = {"pygls", "lsprotocol"}
ENGINE = {"anyio", "yaml"}


def imported_by(*modules: str) -> set[str]:
    """Every module loaded in a fresh interpreter that imports ``modules``."""
    code = f"import sys, {', '.join(modules)}; print('\\n'.join(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(done.stdout.split())


def imported_by_command(cwd: Path, *args: str) -> set[str]:
    """Every module a real `treeflow` process imports, as `-X importtime` lists them."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "treeflow.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return {
        line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")
    }


def packages(modules: set[str]) -> set[str]:
    return {module.split(".")[0] for module in modules}


def engine_modules(modules: set[str]) -> set[str]:
    # The agent protocol's names are plain constants, kept apart so that the parser can offer them.
    return {
        module
        for module in modules
        if module.startswith("treeflow.core.") and module != "treeflow.core.agent_protocol"
    }


def test_reading_the_command_line_loads_no_engine_no_rich_and_no_language_server() -> None:
    loaded = imported_by("treeflow.cli")
    assert engine_modules(loaded) == set()
    assert packages(loaded) & (ENGINE | LANGUAGE_SERVER | {"rich"}) == set()


def test_serve_loads_the_language_server_without_the_engine_or_rich() -> None:
    loaded = imported_by("treeflow.cli", "treeflow.cli.serve")
    assert packages(loaded) >= LANGUAGE_SERVER
    assert engine_modules(loaded) == set()
    assert "treeflow.cli.commands" not in loaded
    assert "rich" not in packages(loaded)


def test_commands_load_the_engine_without_the_language_server_or_rich() -> None:
    loaded = imported_by("treeflow.cli", "treeflow.cli.commands")
    assert "treeflow.core.runner" in loaded
    assert packages(loaded) & (LANGUAGE_SERVER | {"rich"}) == set()


def test_a_run_whose_output_is_not_a_terminal_loads_no_rich(repo: Path) -> None:
    (repo / "treeflow.yml").write_text(
        textwrap.dedent(
            """\
            steps:
              hello: {run: echo hello}
            """
        )
    )
    for args in (["run", "--json"], ["run"], ["runs", "--json"], ["validate"]):
        loaded = imported_by_command(repo, *args)
        assert "treeflow.cli.commands" in loaded, args
        assert packages(loaded) & (LANGUAGE_SERVER | {"rich"}) == set(), args


def test_the_command_holds_ctrl_c_before_it_loads_the_rest_of_the_cli() -> None:
    # Python's own SIGINT handler turns a Ctrl-C into a traceback wherever it lands; `treeflow.cli`
    # installs treeflow's before anything heavier loads (see tests/cli/test_interrupts.py).
    loaded = imported_by("treeflow.cli")
    assert "treeflow.cli.entry" not in loaded
    assert {"signal", "typing", "logging", "argparse"} & loaded == set()

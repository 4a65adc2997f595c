"""The entry script the editor extension starts its bundled language server with."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import treeflow

ROOT = Path(__file__).resolve().parents[2]
ENTRY = ROOT / "editor-client" / "bundled" / "tool" / "treeflow_server.py"
# Distributions whose import name differs from their name.
IMPORT_NAMES = {"pyyaml": "yaml", "gitpython": "git"}


def entry_script_module_list() -> tuple[str, ...]:
    match = re.search(r"^DEPENDENCIES = \((.*?)\)$", ENTRY.read_text(), re.MULTILINE)
    assert match
    return tuple(name.strip().strip('"') for name in match.group(1).split(",") if name.strip())


@pytest.fixture
def entry(tmp_path: Path) -> Path:
    """The script alone, without a bundle beside it: the interpreter's own packages are used."""
    tool = tmp_path / "bundled" / "tool"
    tool.mkdir(parents=True)
    return Path(shutil.copy(ENTRY, tool))


def test_the_script_checks_every_runtime_dependency() -> None:
    with (ROOT / "pyproject.toml").open("rb") as file:
        dependencies = tomllib.load(file)["project"]["dependencies"]
    names = [re.split(r"[<>=!~;\[ ]", dependency)[0].lower() for dependency in dependencies]
    assert sorted(entry_script_module_list()) == sorted(IMPORT_NAMES.get(name, name) for name in names)


def test_check_reports_the_python_and_treeflow_it_found(entry: Path) -> None:
    done = subprocess.run([sys.executable, entry, "--check"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["treeflow"] == treeflow.__version__
    assert report["python"] == ".".join(map(str, sys.version_info[:3]))
    assert Path(report["location"]) == Path(treeflow.__file__).parent


def test_a_python_without_treeflows_dependencies_says_which_are_missing(entry: Path) -> None:
    # -S: no site-packages, so only treeflow's own source folder is importable.
    env = {"PYTHONPATH": str(Path(treeflow.__file__).parents[1]), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-S", entry, "--check"], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 4
    assert done.stdout == ""
    assert done.stderr.startswith(
        f"treeflow: cannot load treeflow with {sys.executable}: no module named 'anyio'"
    )
    assert "Traceback" not in done.stderr


def test_a_python_too_old_is_told_so_before_anything_else(entry: Path) -> None:
    as_python_3_8 = (
        "import runpy, sys; sys.version_info = (3, 8, 18, 'final', 0); sys.version = '3.8.18 (fake)'; "
        f"sys.argv = [{str(entry)!r}]; runpy.run_path({str(entry)!r}, run_name='__main__')"
    )
    done = subprocess.run([sys.executable, "-c", as_python_3_8], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert done.stderr == f"treeflow: needs Python 3.11 or newer; {sys.executable} is Python 3.8.18\n"

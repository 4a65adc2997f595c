"""The entry script the editor extension starts its bundled language server with."""

from __future__ import annotations

import json
import os
import platform
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
BUNDLE_SERVER = ROOT / "scripts" / "bundle-server"
ON_LINUX_X64 = (
    sys.platform == "linux" and platform.machine() == "x86_64" and platform.libc_ver()[0] == "glibc"
)
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


@pytest.fixture(scope="module")
def universal_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `bundled` folder of a .vsix packed without a target, made once: pip installs the
    dependencies from the package index."""
    bundled = tmp_path_factory.mktemp("universal") / "bundled"
    bundle_server(bundled / "libs")
    (bundled / "tool").mkdir()
    shutil.copy(ENTRY, bundled / "tool")
    return bundled


def bundle_server(libs: Path, *options: str) -> None:
    done = subprocess.run(
        [BUNDLE_SERVER, *options, libs],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr


def bundle_for(target: str, universal: Path, into: Path) -> Path:
    """The `bundled` folder of a .vsix packed with ``--target target``."""
    bundled = Path(shutil.copytree(universal, into / "bundled"))
    bundle_server(bundled / "libs", "--target", target)
    return bundled


def check(bundled: Path) -> dict[str, object]:
    entry = bundled / "tool" / ENTRY.name
    done = subprocess.run([sys.executable, entry, "--check"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    assert Path(str(report["location"])) == bundled / "libs" / "treeflow"
    return report


def compiled_modules(bundled: Path) -> list[str]:
    return sorted(path.name for path in (bundled / "libs").rglob("*") if path.suffix in (".so", ".pyd"))


@pytest.mark.slow
@pytest.mark.skipif(
    not ON_LINUX_X64, reason="the linux-x64 bundle's modules load only on Linux x64 with glibc"
)
def test_the_linux_x64_bundle_reads_yaml_with_libyaml(universal_bundle: Path, tmp_path: Path) -> None:
    bundled = bundle_for("linux-x64", universal_bundle, tmp_path)
    assert compiled_modules(bundled) == [
        f"_yaml.cpython-3{minor}-x86_64-linux-gnu.so" for minor in (11, 12, 13, 14)
    ]
    assert check(bundled)["libyaml"] is True


@pytest.mark.slow
def test_the_universal_bundle_is_pure_python(universal_bundle: Path) -> None:
    assert compiled_modules(universal_bundle) == []
    assert check(universal_bundle)["libyaml"] is False


@pytest.mark.slow
def test_a_bundle_packed_for_one_platform_then_universal_again_keeps_no_compiled_module(
    universal_bundle: Path, tmp_path: Path
) -> None:
    bundled = bundle_for("win32-x64", universal_bundle, tmp_path)
    assert compiled_modules(bundled) == [f"_yaml.cp3{minor}-win_amd64.pyd" for minor in (11, 12, 13, 14)]
    bundle_server(bundled / "libs")
    assert compiled_modules(bundled) == []


def test_a_platform_without_pyyaml_wheels_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [BUNDLE_SERVER, "--target", "linux-armhf", tmp_path / "libs"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "no libyaml for target linux-armhf" in done.stderr
    assert not (tmp_path / "libs").exists()


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

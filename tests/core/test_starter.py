"""The starter workflow `treeflow init` and "Create Workflow" write, over many shapes of repository.

Each test builds a real git repository, writes the starter, and reads it back with the workflow
parser, so every shape also checks that the file is valid."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.conftest import make_repo
from treeflow.core.model import Workflow
from treeflow.core.spec import load_workflow
from treeflow.core.starter import WorkflowExists, find_starter, write_starter


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def put(repo: Path, name: str, text: str) -> None:
    path = repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def package(repo: Path, scripts: dict[str, str], **fields: object) -> None:
    (repo / "package.json").write_text(json.dumps({"name": "app", "scripts": scripts, **fields}))


def written(repo: Path) -> Workflow:
    return load_workflow(write_starter(repo).path)


def commands(workflow: Workflow) -> dict[str, str]:
    return {step_id: step.spec.command for step_id, step in workflow.steps.items()}  # type: ignore[attr-defined]


def needs(workflow: Workflow) -> dict[str, list[str]]:
    return {step_id: list(step.needs) for step_id, step in workflow.steps.items() if step.needs}


def raw(repo: Path) -> dict[str, object]:
    loaded = yaml.safe_load((repo / "treeflow.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_npm_scripts_lint_test_build_with_build_after_the_others(repo: Path) -> None:
    package(
        repo,
        {"lint": "eslint .", "test": "vitest run", "build": "tsc -p .", "dev": "vite", "start": "node ."},
    )
    (repo / "package-lock.json").write_text("{}")
    (repo / ".gitignore").write_text("node_modules/\n")
    workflow = written(repo)
    assert commands(workflow) == {"lint": "npm run lint", "test": "npm test", "build": "npm run build"}
    assert needs(workflow) == {"build": ["lint", "test"]}
    assert raw(repo)["setup"] == {"run": "npm ci", "when_changed": ["package-lock.json"]}
    assert raw(repo)["pool"] == {"keep": ["node_modules"]}
    assert "Add node_modules to .gitignore" not in (repo / "treeflow.yml").read_text()


@pytest.mark.parametrize(
    ("lockfile", "run", "install"),
    [
        ("pnpm-lock.yaml", "pnpm run lint", "pnpm install --frozen-lockfile"),
        ("yarn.lock", "yarn run lint", "yarn install --frozen-lockfile"),
        ("bun.lockb", "bun run lint", "bun install --frozen-lockfile"),
    ],
)
def test_the_lockfile_names_the_package_manager(repo: Path, lockfile: str, run: str, install: str) -> None:
    package(repo, {"lint": "eslint ."})
    (repo / lockfile).write_text("")
    workflow = written(repo)
    assert commands(workflow) == {"lint": run}
    assert raw(repo)["setup"] == {"run": install, "when_changed": [lockfile]}


def test_yarn_berry_installs_immutably(repo: Path) -> None:
    package(repo, {"test": "jest"})
    (repo / "yarn.lock").write_text("")
    (repo / ".yarnrc.yml").write_text("nodeLinker: node-modules\n")
    written(repo)
    assert raw(repo)["setup"] == {"run": "yarn install --immutable", "when_changed": ["yarn.lock"]}


def test_without_a_lockfile_the_package_manager_field_decides_and_package_json_is_watched(repo: Path) -> None:
    package(repo, {"test": "jest"}, packageManager="pnpm@9.1.0")
    workflow = written(repo)
    assert commands(workflow) == {"test": "pnpm run test"}
    assert raw(repo)["setup"] == {"run": "pnpm install", "when_changed": ["package.json"]}


def test_scripts_that_never_end_write_or_publish_are_left_out(repo: Path) -> None:
    package(
        repo,
        {
            "test": 'echo "Error: no test specified" && exit 1',
            "test:watch": "vitest",
            "lint:fix": "eslint --fix .",
            "format": "prettier --write .",
            "format:check": "prettier --check .",
            "pretest": "tsc",
            "release": "npm publish",
            "typecheck": "tsc --noEmit",
            "test:unit": "vitest run",
        },
    )
    workflow = written(repo)
    assert commands(workflow) == {
        "format-check": "npm run format:check",
        "typecheck": "npm run typecheck",
        "test-unit": "npm run test:unit",
    }


def test_the_starter_warns_when_what_setup_installs_is_not_ignored(repo: Path) -> None:
    package(repo, {"test": "jest"})
    written(repo)
    assert "# Add node_modules to .gitignore" in (repo / "treeflow.yml").read_text()


def test_a_uv_project_runs_its_declared_tools_through_uv(repo: Path) -> None:
    put(
        repo,
        "pyproject.toml",
        """\
        [project]
        name = "app"
        version = "1"
        [dependency-groups]
        dev = ["pytest>=8", "ruff", "mypy==1.10"]
        [tool.ruff]
        line-length = 100
        [tool.mypy]
        strict = true
        files = ["src"]
        """,
    )
    (repo / "uv.lock").write_text("")
    (repo / ".gitignore").write_text(".venv\n")
    workflow = written(repo)
    assert commands(workflow) == {
        "ruff": "uv run ruff check .",
        "mypy": "uv run mypy",
        "pytest": "uv run pytest -q",
    }
    assert needs(workflow) == {}
    assert raw(repo)["setup"] == {"run": "uv sync --frozen", "when_changed": ["uv.lock", "pyproject.toml"]}
    assert raw(repo)["pool"] == {"keep": [".venv"]}


def test_a_poetry_project_runs_its_tools_through_poetry(repo: Path) -> None:
    put(
        repo,
        "pyproject.toml",
        """\
        [tool.poetry]
        name = "app"
        [tool.poetry.group.dev.dependencies]
        pytest = "^8"
        """,
    )
    (repo / "poetry.lock").write_text("")
    workflow = written(repo)
    assert commands(workflow) == {"pytest": "poetry run pytest -q"}
    assert raw(repo)["setup"] == {
        "run": "poetry install --no-interaction",
        "when_changed": ["poetry.lock", "pyproject.toml"],
    }
    assert "pool" not in raw(repo)


def test_a_plain_project_installs_its_development_extras_into_a_virtual_environment(repo: Path) -> None:
    put(
        repo,
        "pyproject.toml",
        """\
        [project]
        name = "app"
        version = "1"
        [project.optional-dependencies]
        dev = ["pytest", "ruff>=0.5"]
        docs = ["sphinx"]
        [tool.mypy]
        strict = true
        """,
    )
    workflow = written(repo)
    # mypy is configured but not a dependency: it runs from PATH, on everything (no `files`).
    assert commands(workflow) == {
        "ruff": ".venv/bin/ruff check .",
        "mypy": "mypy .",
        "pytest": ".venv/bin/pytest -q",
    }
    setup = raw(repo)["setup"]
    assert setup == {
        "run": "python3 -m venv .venv && .venv/bin/python -m pip install -e '.[dev]'",
        "when_changed": ["pyproject.toml"],
    }


def test_tool_config_files_without_pyproject(repo: Path) -> None:
    put(repo, "pytest.ini", "[pytest]\naddopts = -q\n")
    put(repo, "ruff.toml", "line-length = 100\n")
    put(repo, "mypy.ini", "[mypy]\nfiles = app\n")
    put(repo, "requirements-dev.txt", "pytest==8.0\n# linters\nruff\n")
    workflow = written(repo)
    assert commands(workflow) == {
        "ruff": ".venv/bin/ruff check .",
        "mypy": "mypy",
        "pytest": ".venv/bin/pytest -q",
    }
    assert raw(repo)["setup"] == {
        "run": "python3 -m venv .venv && .venv/bin/python -m pip install -r requirements-dev.txt",
        "when_changed": ["requirements*.txt"],
    }


def test_a_broken_pyproject_is_read_as_empty(repo: Path) -> None:
    put(repo, "pyproject.toml", "[project\nname = ")
    workflow = written(repo)
    assert list(workflow.steps) == ["hello"]


def test_makefile_targets_with_build_after_lint_and_test(repo: Path) -> None:
    put(
        repo,
        "Makefile",
        """\
        CC := gcc
        .PHONY: all lint test build clean
        all: build
        lint:
        \tgolangci-lint run
        test unit: lint
        \tgo test ./...
        build:
        \tgo build ./...
        clean:
        \trm -rf bin
        %.o: %.c
        \t$(CC) -c $<
        """,
    )
    workflow = written(repo)
    assert commands(workflow) == {
        "lint": "make lint",
        "test": "make test",
        "unit": "make unit",
        "build": "make build",
    }
    assert needs(workflow) == {"build": ["lint", "test", "unit"]}
    assert "setup" not in raw(repo)


def test_github_actions_jobs_become_steps_with_their_needs(repo: Path) -> None:
    put(
        repo,
        ".github/workflows/ci.yml",
        """\
        name: CI
        on: [push]
        jobs:
          lint:
            runs-on: ubuntu-latest
            steps:
              - uses: actions/checkout@v4
              - uses: actions/setup-node@v4
              - run: npm ci
              - run: npx eslint .
          test:
            runs-on: ${{ matrix.os }}
            strategy: {matrix: {os: [ubuntu-latest, macos-latest]}}
            steps:
              - uses: actions/checkout@v4
              - run: sudo apt-get install -y libfoo
              - name: unit
                run: |
                  npx vitest run
                  npx vitest run --project integration
              - run: echo "${{ secrets.TOKEN }}"
              - run: ./scripts/check.ps1
                shell: pwsh
              - run: cargo test
                working-directory: crates/core
          build:
            needs: [lint, test]
            runs-on: ubuntu-latest
            steps:
              - run: npx tsc -p .
          deploy:
            needs: build
            runs-on: ubuntu-latest
            steps:
              - run: ./deploy.sh
        """,
    )
    workflow = written(repo)
    assert commands(workflow) == {
        "lint": "npx eslint .",
        "test": "set -e\nnpx vitest run\nnpx vitest run --project integration\n(cd crates/core && cargo test)",
        "build": "npx tsc -p .",
    }
    assert needs(workflow) == {"build": ["lint", "test"]}


def test_a_ci_job_repeating_a_script_is_not_a_second_step(repo: Path) -> None:
    package(repo, {"lint": "eslint .", "test": "jest"})
    (repo / "package-lock.json").write_text("{}")
    put(
        repo,
        ".github/workflows/ci.yaml",
        """\
        jobs:
          checks:
            steps:
              - run: npm ci
              - run: npm run lint
          test:
            steps:
              - run: npm test
          e2e:
            needs: test
            steps:
              - run: npx playwright test
        """,
    )
    workflow = written(repo)
    assert commands(workflow) == {
        "lint": "npm run lint",
        "test": "npm test",
        "e2e": "npx playwright test",
    }
    # The CI job's `needs: test` names the step that runs its command.
    assert needs(workflow) == {"e2e": ["test"]}


def test_ids_from_different_sources_do_not_collide(repo: Path) -> None:
    package(repo, {"test": "jest", "lint:css": "stylelint .", "lint-css": "stylelint src"})
    put(repo, "Makefile", "test:\n\tpytest\nTest:\n\techo\n")
    put(repo, ".github/workflows/ci.yml", "jobs:\n  test:\n    steps:\n      - run: go test ./...\n")
    workflow = written(repo)
    assert commands(workflow) == {
        "lint-css": "npm run lint:css",
        "npm-lint-css": "npm run lint-css",
        "test": "npm test",
        "make-test": "make test",
        "ci-test": "go test ./...",
    }


def test_every_source_at_once_shares_one_setup(repo: Path) -> None:
    package(repo, {"lint": "eslint .", "build": "vite build"})
    (repo / "package-lock.json").write_text("{}")
    put(repo, "pyproject.toml", '[project]\nname = "a"\nversion = "1"\ndependencies = ["pytest"]\n')
    put(repo, "Makefile", "check:\n\ttrue\n")
    put(repo, ".github/workflows/ci.yml", "jobs:\n  docs:\n    steps:\n      - run: mkdocs build --strict\n")
    starter = find_starter(repo)
    assert starter.sources == ("package.json", "pyproject.toml", "Makefile", ".github/workflows")
    workflow = written(repo)
    assert list(workflow.steps) == ["lint", "build", "pytest", "check", "docs"]
    assert raw(repo)["setup"] == {
        "run": "npm ci && python3 -m venv .venv && .venv/bin/python -m pip install -e .",
        "when_changed": ["package-lock.json", "pyproject.toml"],
    }
    assert raw(repo)["pool"] == {"keep": ["node_modules", ".venv"]}


def test_an_empty_repository_gets_a_step_that_runs(repo: Path) -> None:
    workflow = written(repo)
    assert list(workflow.steps) == ["hello"]
    text = (repo / "treeflow.yml").read_text()
    assert "found no lint, test or build commands" in text
    assert "setup" not in raw(repo)


def test_odd_commands_are_quoted_so_that_they_read_back_unchanged(repo: Path) -> None:
    package(
        repo,
        {
            "lint": "eslint . # comment-like: [x] {y} 'q' \"d\"",
            "test": "node -e 'process.exit(0)' \u00e9",
            "check": "tsc\u001b[0m",
            "build": "- starts with a dash",
        },
    )
    put(
        repo,
        ".github/workflows/ci.yml",
        'jobs:\n  typecheck:\n    steps:\n      - run: "  x\\n\\n  y:\\tz\\n"\n',
    )
    workflow = written(repo)
    assert commands(workflow) == {
        "lint": "npm run lint",
        "check": "npm run check",
        "test": "npm test",
        "build": "npm run build",
        "typecheck": "set -e\nx\n\n  y:\tz",
    }


def test_an_unreadable_source_is_skipped(repo: Path) -> None:
    (repo / "package.json").write_text("{not json")
    put(repo, ".github/workflows/ci.yml", "jobs: [\n")
    put(repo, ".github/workflows/other.yml", "on: push\n")
    assert list(written(repo).steps) == ["hello"]


def test_an_existing_workflow_is_never_overwritten_unless_forced(repo: Path) -> None:
    (repo / "treeflow.yaml").write_text("steps: {a: {run: 'true'}}\n")
    with pytest.raises(WorkflowExists) as raised:
        write_starter(repo)
    assert raised.value.path == repo / "treeflow.yaml"
    assert not (repo / "treeflow.yml").exists()
    assert write_starter(repo, force=True).path == repo / "treeflow.yml"


def test_several_workflows_in_the_treeflow_folder_count_as_existing(repo: Path) -> None:
    put(repo, ".treeflow/b.yml", "steps: {a: {run: 'true'}}\n")
    put(repo, ".treeflow/a.yaml", "steps: {a: {run: 'true'}}\n")
    with pytest.raises(WorkflowExists) as raised:
        write_starter(repo)
    assert raised.value.path == repo / ".treeflow" / "a.yaml"


def test_script_names_are_quoted_and_a_command_with_a_nul_byte_is_left_out(repo: Path) -> None:
    package(repo, {"lint all": "eslint .", "TEST\u0000": "jest", "build": "tsc"})
    workflow = written(repo)
    assert commands(workflow) == {"lint-all": "npm run 'lint all'", "build": "npm run build"}
    assert needs(workflow) == {"build": ["lint-all"]}

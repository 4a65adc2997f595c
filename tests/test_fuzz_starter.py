"""Property-based tests of the starter workflow: whatever scripts, targets and CI jobs a repository
holds, `treeflow init` writes a file the parser reads back with every command unchanged."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzzing import fuzz_settings
from treeflow.core.spec import load_workflow
from treeflow.core.starter import write_starter

# Names that the starter keeps, with anything around them, and any other text.
NAMES = st.one_of(
    st.sampled_from(
        ["lint", "test", "build", "check", "typecheck", "test:unit", "build-all", "Test", "TEST"]
    ),
    st.text(min_size=1, max_size=80),
    st.builds(
        lambda before, word, after: before + word + after,
        st.text(max_size=10),
        st.sampled_from(["test", "lint", "build"]),
        st.text(max_size=10),
    ),
)
TEXT = st.text(max_size=120)
SCRIPTS = st.dictionaries(NAMES, TEXT, max_size=8)
JOBS = st.dictionaries(
    NAMES,
    st.lists(st.one_of(TEXT, st.builds(lambda text: text + "\nsecond line\n  indented", TEXT)), max_size=4),
    max_size=5,
)
TARGETS = st.lists(st.sampled_from(["lint", "test", "tests", "build", "check", "unit", "vet"]), max_size=5)


@pytest.mark.slow
@fuzz_settings(60)
@given(
    scripts=SCRIPTS,
    jobs=JOBS,
    targets=TARGETS,
    lockfile=st.sampled_from(["", "package-lock.json", "yarn.lock"]),
)
def test_the_starter_is_always_a_valid_workflow(
    scripts: dict[str, str], jobs: dict[str, list[str]], targets: list[str], lockfile: str
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "package.json").write_text(json.dumps({"scripts": scripts}))
        if lockfile:
            (root / lockfile).write_text("")
        (root / "Makefile").write_text("".join(f"{target}:\n\ttrue\n" for target in targets))
        workflows = root / ".github" / "workflows"
        workflows.mkdir(parents=True)
        document = {"jobs": {job: {"steps": [{"run": run} for run in runs]} for job, runs in jobs.items()}}
        (workflows / "ci.yml").write_text(yaml.safe_dump(document))
        written = write_starter(root)
        workflow = load_workflow(written.path)
        commands = {step_id: step.spec.command for step_id, step in workflow.steps.items()}  # type: ignore[attr-defined]
        assert commands == {step.id: step.run for step in written.starter.steps} or list(commands) == [
            "hello"
        ]

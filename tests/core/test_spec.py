"""Workflow files to `Workflow`: every error located at file:line:col (1-based), and what valid files mean."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from treeflow.core.agent import AgentSpec
from treeflow.core.model import RetryPolicy
from treeflow.core.spec import WorkflowError, find_workflow, load_workflow, parse_workflow
from treeflow.core.spec_reader import SpecError, parse_duration

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo" / "treeflow.yml"


def write(directory: Path, text: str, name: str = "treeflow.yml") -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def errors_in(path: Path) -> list[SpecError]:
    with pytest.raises(WorkflowError) as caught:
        load_workflow(path)
    found = caught.value.errors
    assert found, "a WorkflowError must carry at least one error"
    assert all(error.path == path for error in found)
    return found


def only_error(path: Path) -> SpecError:
    found = errors_in(path)
    assert len(found) == 1, [str(error) for error in found]
    return found[0]


def assert_error(error: SpecError, line: int, column: int, *words: str) -> None:
    assert (error.line, error.column) == (line, column), str(error)
    for word in words:
        assert word in error.message, f"{word!r} not in {error.message!r}"


# Errors, one kind at a time


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        pytest.param(
            "steps:\n  a: {run: echo hi\n  b: {run: echo}\n",
            3,
            4,
            ("YAML syntax", "expected ',' or '}'"),
            id="unclosed-flow-mapping",
        ),
        pytest.param(
            "steps:\n\ta: {run: echo}\n",
            2,
            1,
            ("YAML syntax", "'\\t'"),
            id="tab-indent",
        ),
        pytest.param(
            "steps: {a: {run: x}}\n---\nsteps: {b: {run: y}}\n",
            2,
            1,
            ("YAML syntax", "document"),
            id="second-document",
        ),
    ],
)
def test_yaml_syntax_error(tmp_path: Path, text: str, line: int, column: int, words: tuple[str, ...]) -> None:
    assert_error(only_error(write(tmp_path, text)), line, column, *words)


def test_control_character_is_a_located_error_not_a_crash(tmp_path: Path) -> None:
    # A stray control character makes PyYAML's reader fail before any token.
    path = write(tmp_path, 'steps:\n  a: {run: "echo \x01"}\n')
    assert_error(only_error(path), 2, 18, "YAML")


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        pytest.param(
            "nme: checks\nsteps:\n  a: {run: x}\n",
            1,
            1,
            ("unknown key `nme` in the workflow", "did you mean `name`?"),
            id="top-level-close",
        ),
        pytest.param(
            "steps:\n  a: {run: x}\ncolour: red\n",
            3,
            1,
            ("unknown key `colour` in the workflow", "known keys:", "steps"),
            id="top-level-far",
        ),
        pytest.param(
            "defaults:\n  timout: 5m\nsteps:\n  a: {run: x}\n",
            2,
            3,
            ("unknown key `timout` in defaults", "did you mean `timeout`?"),
            id="defaults",
        ),
        pytest.param(
            "steps:\n  b: {run: x}\n  a:\n    run: x\n    need: [b]\n",
            5,
            5,
            ("unknown key `need` in step `a`", "did you mean `needs`?"),
            id="step",
        ),
        pytest.param(
            "steps:\n  a:\n    run: x\n    retry: {atempts: 3}\n",
            4,
            13,
            ("unknown key `atempts`", "retry", "did you mean `attempts`?"),
            id="retry",
        ),
        pytest.param(
            "defaults:\n  retry:\n    backof: 2s\nsteps:\n  a: {run: x}\n",
            3,
            5,
            ("unknown key `backof` in defaults.retry", "did you mean `backoff`?"),
            id="defaults-retry",
        ),
    ],
)
def test_unknown_key(tmp_path: Path, text: str, line: int, column: int, words: tuple[str, ...]) -> None:
    error = only_error(write(tmp_path, text))
    assert_error(error, line, column, *words)
    if "known keys:" in words:
        assert "did you mean" not in error.message


def test_unknown_key_in_agent_also_reports_the_missing_prompt(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        steps:
          review:
            agent:
              promt: Review this branch
        """,
    )
    found = errors_in(path)
    assert len(found) == 2, [str(error) for error in found]
    unknown = next(error for error in found if "unknown key" in error.message)
    missing = next(error for error in found if "needs a `prompt:`" in error.message)
    assert_error(unknown, 4, 7, "unknown key `promt`", "agent", "did you mean `prompt`?")
    assert_error(missing, 4, 7, "step `review`: agent needs a `prompt:`")


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        pytest.param(
            'max_parallel: "four"\nsteps:\n  a: {run: x}\n',
            1,
            15,
            ("max_parallel must be a whole number", "'four'"),
            id="max_parallel-string",
        ),
        pytest.param(
            "max_parallel: 0\nsteps:\n  a: {run: x}\n",
            1,
            15,
            ("max_parallel must be at least 1", "0"),
            id="max_parallel-zero",
        ),
        pytest.param(
            "fail_fast: maybe\nsteps:\n  a: {run: x}\n",
            1,
            12,
            ("fail_fast must be true or false", "'maybe'"),
            id="fail_fast-string",
        ),
        pytest.param(
            "steps:\n  a: {run: x}\n  b:\n    run: x\n    needs: 3\n",
            5,
            12,
            ("step `b`: needs must be a list of strings", "the number 3"),
            id="needs-number",
        ),
        pytest.param(
            "steps:\n  a: {run: x}\n  b:\n    run: x\n    needs: [a, 3]\n",
            5,
            16,
            ("needs must be a string", "the number 3"),
            id="needs-entry-number",
        ),
        pytest.param(
            "env:\n  MODE: {fast: true}\nsteps:\n  a: {run: x}\n",
            2,
            9,
            ("env.MODE must be a string", "a mapping"),
            id="env-value-mapping",
        ),
        pytest.param(
            "steps:\n  a:\n    run: x\n    env:\n      PATHS: [a, b]\n",
            5,
            14,
            ("step `a`: env.PATHS must be a string", "a list"),
            id="step-env-value-list",
        ),
        pytest.param(
            "steps:\n  a: echo hi\n",
            2,
            6,
            ("step `a` must be a mapping", "the string 'echo hi'"),
            id="step-string",
        ),
        pytest.param(
            "steps:\n  - a\n  - b\n",
            2,
            3,
            ("steps must be a mapping", "a list"),
            id="steps-list",
        ),
        pytest.param(
            "steps:\n  a: {run: [echo, hi]}\n",
            2,
            12,
            ("step `a`: run must be a string", "a list"),
            id="run-list",
        ),
        pytest.param(
            "- run: x\n",
            1,
            1,
            ("the workflow must be a mapping", "a list"),
            id="workflow-list",
        ),
    ],
)
def test_wrong_type(tmp_path: Path, text: str, line: int, column: int, words: tuple[str, ...]) -> None:
    assert_error(only_error(write(tmp_path, text)), line, column, *words)


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        pytest.param(
            "steps:\n  a:\n    run: x\n    timeout: 10x\n",
            4,
            14,
            ("step `a`: timeout", "bad duration '10x'"),
            id="unknown-unit",
        ),
        pytest.param(
            "steps:\n  a:\n    run: x\n    timeout: 0s\n",
            4,
            14,
            ("step `a`: timeout must be longer than zero",),
            id="zero",
        ),
        pytest.param(
            "steps:\n  a:\n    run: x\n    timeout: -5\n",
            4,
            14,
            ("longer than zero",),
            id="negative-number",
        ),
        pytest.param(
            "defaults:\n  timeout: 1m 30s\nsteps:\n  a: {run: x}\n",
            2,
            12,
            ("defaults.timeout", "bad duration '1m 30s'"),
            id="space-inside",
        ),
        pytest.param(
            "steps:\n  a:\n    run: x\n    retry: {backoff: soon}\n",
            4,
            22,
            ("retry.backoff", "bad duration 'soon'"),
            id="retry-backoff",
        ),
        pytest.param(
            "steps:\n  a:\n    agent: {prompt: p, heartbeat: 0ms}\n",
            3,
            35,
            ("agent.heartbeat must be longer than zero",),
            id="agent-heartbeat",
        ),
    ],
)
def test_bad_duration(tmp_path: Path, text: str, line: int, column: int, words: tuple[str, ...]) -> None:
    assert_error(only_error(write(tmp_path, text)), line, column, *words)


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
def test_non_finite_duration_is_an_error_not_a_crash(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, f"steps:\n  a:\n    run: x\n    timeout: {value}\n")
    assert_error(only_error(path), 4, 14, "step `a`: timeout")


@pytest.mark.parametrize(("value", "seconds"), [("0x10", 16.0), ("1:30", 90.0)])
def test_yaml_integer_forms_are_read_as_yaml_means_them_or_rejected(
    tmp_path: Path, value: str, seconds: float
) -> None:
    # PyYAML tags these as ints. Either reading them as YAML does or a located error is fine; a crash is not.
    path = write(tmp_path, f"steps:\n  a:\n    run: x\n    timeout: {value}\n")
    located: list[tuple[int, int]] = []
    read: float | None = None
    try:
        read = load_workflow(path).steps["a"].timeout_s
    except WorkflowError as exc:
        located = [(error.line, error.column) for error in exc.errors]
    assert located == [(4, 14)] if located else read == seconds


@pytest.mark.parametrize(
    ("step_id", "line", "column"),
    [
        pytest.param("bad id", 3, 3, id="space"),
        pytest.param("café", 3, 3, id="non-ascii"),
        pytest.param("a" * 65, 3, 3, id="65-chars"),
        pytest.param("a.b", 3, 3, id="dot"),
    ],
)
def test_bad_step_id(tmp_path: Path, step_id: str, line: int, column: int) -> None:
    path = write(tmp_path, f"steps:\n  ok: {{run: x}}\n  {step_id!r}: {{run: x}}\n")
    assert_error(only_error(path), line, column, f"bad step id {step_id!r}", "64")


def test_longest_allowed_step_id_is_accepted(tmp_path: Path) -> None:
    step_id = "A-z_0" + "9" * 59
    workflow = load_workflow(write(tmp_path, f"steps:\n  {step_id}: {{run: x}}\n"))
    assert list(workflow.steps) == [step_id]


def test_unknown_need_suggests_a_close_step(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        steps:
          build: {run: make}
          test:
            run: make test
            needs: [buidl, docs]
        """,
    )
    close, far = errors_in(path)
    assert_error(close, 5, 13, "step `test` needs unknown step `buidl`", "did you mean `build`?")
    assert_error(far, 5, 20, "step `test` needs unknown step `docs`")
    assert "did you mean" not in far.message


def test_step_needing_itself(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        steps:
          a:
            run: x
            needs: a
        """,
    )
    # Reported once, as itself, not also as a one-step cycle.
    assert_error(only_error(path), 4, 12, "step `a` needs itself")


def test_cycle_is_reported_once_at_its_first_edge(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        steps:
          a:
            run: x
            needs: [b]
          b:
            run: x
            needs: [c]
          c:
            run: x
            needs: [a]
          d:
            run: x
            needs: [a]
        """,
    )
    assert_error(only_error(path), 4, 13, "dependency cycle", "a -> b -> c -> a")


def test_two_cycles_are_both_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        steps:
          x: {run: x, needs: [y]}
          y: {run: x, needs: [x]}
          p: {run: x, needs: q}
          q: {run: x, needs: [p, x]}
        """,
    )
    first, second = errors_in(path)
    assert_error(first, 2, 23, "x -> y -> x")
    assert_error(second, 4, 22, "p -> q -> p")


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        pytest.param("", 1, 1, ("empty",), id="empty-file"),
        pytest.param("# nothing yet\n\n", 1, 1, ("empty",), id="only-comments"),
        pytest.param("# checks\nname: checks\n", 2, 1, ("no `steps:`",), id="no-steps"),
        pytest.param("name: checks\nsteps: {}\n", 2, 8, ("`steps:` is empty",), id="empty-mapping"),
        pytest.param("name: checks\nsteps:\n", 2, 7, ("steps must be a mapping", "empty value"), id="null"),
    ],
)
def test_no_steps(tmp_path: Path, text: str, line: int, column: int, words: tuple[str, ...]) -> None:
    assert_error(only_error(write(tmp_path, text)), line, column, *words)


def test_step_with_both_run_and_agent(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        steps:
          a:
            run: make
            agent: {prompt: fix it}
        """,
    )
    assert_error(only_error(path), 4, 12, "step `a` has both `run:` and `agent:`")


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        pytest.param("steps:\n  a:\n    needs: []\n    timeout: 5s\n", 3, 5, id="block"),
        pytest.param("steps:\n  a: {timeout: 5s}\n", 2, 6, id="flow"),
    ],
)
def test_step_with_neither_run_nor_agent(tmp_path: Path, text: str, line: int, column: int) -> None:
    assert_error(only_error(write(tmp_path, text)), line, column, "step `a` needs `run:`", "`agent:`")


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        pytest.param(
            "name: one\nname: two\nsteps:\n  a: {run: x}\n",
            2,
            1,
            ("duplicate key `name` in the workflow",),
            id="top-level",
        ),
        pytest.param(
            "steps:\n  a: {run: x}\n  b: {run: y}\n  a: {run: z}\n",
            4,
            3,
            ("duplicate key `a` in steps",),
            id="step-id",
        ),
        pytest.param(
            "steps:\n  a:\n    run: x\n    run: y\n",
            4,
            5,
            ("duplicate key `run` in step `a`",),
            id="in-step",
        ),
    ],
)
def test_duplicate_key(tmp_path: Path, text: str, line: int, column: int, words: tuple[str, ...]) -> None:
    assert_error(only_error(write(tmp_path, text)), line, column, *words)


def test_unsupported_version(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 2\nsteps:\n  a: {run: x}\n")
    assert_error(only_error(path), 1, 10, "unsupported version 2", "version 1")


def test_version_1_is_accepted(tmp_path: Path) -> None:
    assert list(load_workflow(write(tmp_path, "version: 1\nsteps:\n  a: {run: x}\n")).steps) == ["a"]


def test_every_error_in_a_file_is_reported_at_once_sorted_by_line(tmp_path: Path) -> None:
    # Top-level keys are checked before steps and `needs` only after every step, so detection order
    # differs from file order; the report must still read top to bottom.
    path = write(
        tmp_path,
        """\
        name: checks
        max_parallel: many
        steps:
          lint:
            run: ruff check .
            needs: [tset]
          test:
            run: pytest
            timeout: soon
          bad id:
            run: x
          docs: {}
        colour: blue
        """,
    )
    found = errors_in(path)
    assert [(error.line, error.column) for error in found] == [
        (2, 15),
        (6, 13),
        (9, 14),
        (10, 3),
        (12, 9),
        (13, 1),
    ]
    messages = [error.message for error in found]
    assert "max_parallel" in messages[0]
    assert "did you mean `test`?" in messages[1]
    assert "bad duration 'soon'" in messages[2]
    assert "bad step id 'bad id'" in messages[3]
    assert "step `docs` needs `run:`" in messages[4]
    assert "unknown key `colour`" in messages[5]


def test_error_prints_as_file_line_column_message(tmp_path: Path) -> None:
    path = write(tmp_path, "steps:\n  a: {run: x, timeout: 10x}\n")
    with pytest.raises(WorkflowError) as caught:
        load_workflow(path)
    error = caught.value.errors[0]
    assert str(error) == f"{path}:2:24: {error.message}"
    assert str(caught.value) == str(error)


def test_unreadable_file_is_an_error_at_its_start(tmp_path: Path) -> None:
    path = tmp_path / "treeflow.yml"
    path.mkdir()
    assert_error(only_error(path), 1, 1, "cannot read workflow file")


@pytest.mark.parametrize(
    ("data", "line", "column"),
    [
        (b"steps:\n  a: {run: '\xc3\xa9 \xff'}\n", 2, 15),
        (b"steps:\r\n  a: {run: '\xff'}\r\n", 2, 13),
        (b"\xef\xbb\xbfsteps: \xff\n", 1, 8),
    ],
)
def test_text_that_is_not_utf_8_is_an_error_at_the_bad_byte(
    tmp_path: Path, data: bytes, line: int, column: int
) -> None:
    path = tmp_path / "treeflow.yml"
    path.write_bytes(data)
    assert_error(only_error(path), line, column, "not UTF-8", "0xff")


@pytest.mark.parametrize("name", ["A=B", ""])
def test_env_name_that_cannot_be_an_environment_variable_is_an_error(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, f"env:\n  {name!r}: x\nsteps:\n  a: {{run: x}}\n")
    assert_error(only_error(path), 2, 3, "env")


@pytest.mark.parametrize(
    ("text", "line", "column", "what"),
    [
        pytest.param('env:\n  A: "x\\0y"\nsteps:\n  a: {run: x}\n', 2, 6, "env.A", id="env-value"),
        pytest.param('env:\n  "A\\0B": x\nsteps:\n  a: {run: x}\n', 2, 3, "env", id="env-name"),
        pytest.param(
            'steps:\n  a: {run: x, env: {A: "\\0"}}\n', 2, 24, "step `a`: env.A", id="step-env-value"
        ),
        pytest.param('steps:\n  a: {run: "echo \\0"}\n', 2, 12, "step `a`: run", id="run"),
        pytest.param(
            'steps:\n  a: {agent: {prompt: p, command: "x\\0"}}\n', 2, 35, "agent.command", id="agent-command"
        ),
        pytest.param('setup: {run: "x\\0"}\nsteps:\n  a: {run: x}\n', 1, 14, "setup.run", id="setup-run"),
        pytest.param('setup: {copy: "a\\0"}\nsteps:\n  a: {run: x}\n', 1, 15, "setup.copy", id="setup-copy"),
        pytest.param('base: "main\\0"\nsteps:\n  a: {run: x}\n', 1, 7, "base", id="base"),
    ],
)
def test_nul_byte_is_a_located_error(tmp_path: Path, text: str, line: int, column: int, what: str) -> None:
    assert_error(only_error(write(tmp_path, text)), line, column, what)


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ('""', "is empty"),
        ('"."', "names the repository root"),
        ('"./"', "names the repository root"),
        ('"./."', "names the repository root"),
        ('"/etc/passwd"', "absolute path"),
        ('"../outside"', "outside the repository"),
        ('"config/../../x"', "outside the repository"),
        ('"a/***"', "`**` must be a whole path component"),
    ],
)
def test_setup_copy_pattern_that_cannot_name_files_in_the_repository_is_a_located_error(
    tmp_path: Path, pattern: str, words: str
) -> None:
    path = write(tmp_path, f"setup:\n  copy: [.env, {pattern}]\nsteps:\n  a: {{run: x}}\n")
    assert_error(only_error(path), 2, 16, "setup.copy", words)


def test_setup_copy_patterns_that_reach_the_root_through_a_glob_are_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "setup:\n  copy: ['**', 'a/.', '.venv/**', '*.cfg']\nsteps:\n  a: {run: x}\n")
    assert load_workflow(path).setup.copy == ("**", "a/.", ".venv/**", "*.cfg")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("retry: {backoff: 1.0e+300}", "1.0e+300"),
        ("retry: {max_backoff: 1.0e+300}", "1.0e+300"),
        ("retry: {backoff: 99999999h}", "99999999h"),
        ("timeout: 721h", "721h"),
    ],
)
def test_duration_longer_than_30_days_is_an_error(tmp_path: Path, field: str, value: str) -> None:
    path = write(tmp_path, f"steps:\n  a:\n    run: x\n    {field}\n")
    assert_error(only_error(path), 4, 5 + field.index(value), "must be at most 720h", value)


def test_longest_duration_is_accepted(tmp_path: Path) -> None:
    workflow = load_workflow(
        write(tmp_path, "steps:\n  a: {run: x, retry: {backoff: 720h, max_backoff: 720h}}\n")
    )
    assert workflow.steps["a"].retry.backoff_s == 30 * 24 * 3600


@pytest.mark.parametrize("step_id", ["-rf", "--", "-"])
def test_step_id_starting_with_a_dash_is_an_error(tmp_path: Path, step_id: str) -> None:
    path = write(tmp_path, f"steps:\n  ok: {{run: x}}\n  {step_id!r}: {{run: x}}\n")
    assert_error(only_error(path), 3, 3, f"bad step id {step_id!r}", "cannot start with '-'")


def test_step_ids_equal_but_for_case_are_an_error_at_the_second(tmp_path: Path) -> None:
    path = write(tmp_path, "steps:\n  Build: {run: x}\n  test: {run: x, needs: Build}\n  build: {run: x}\n")
    assert_error(only_error(path), 4, 3, "`build` differs from `Build` only in case")


def test_workflow_file_over_1_mib_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "treeflow.yml"
    path.write_text("steps:\n  a: {run: x}\n" + "#" * (1024 * 1024) + "\n", encoding="utf-8")
    assert_error(only_error(path), 1, 1, "larger than 1 MiB")


def test_workflow_text_over_1_mib_is_refused_before_parsing(tmp_path: Path) -> None:
    text = "steps:\n  a: {run: x}\n# " + "é" * (512 * 1024) + "\n"
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(text, tmp_path / "treeflow.yml")
    assert_error(caught.value.errors[0], 1, 1, "larger than 1 MiB")


def test_workflow_of_exactly_1_mib_is_read(tmp_path: Path) -> None:
    head = "steps:\n  a: {run: x}\n"
    path = tmp_path / "treeflow.yml"
    path.write_text(head + "#" * (1024 * 1024 - len(head)), encoding="utf-8")
    assert list(load_workflow(path).steps) == ["a"]


# Valid files and what they mean


def test_demo_example_parses() -> None:
    # The demo evolves; PyYAML's own reading of it is the reference, so this checks the parser, not the demo.
    raw = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    workflow = load_workflow(DEMO)
    assert workflow.path == DEMO
    assert workflow.name == raw.get("name", DEMO.stem)
    assert list(workflow.steps) == list(raw["steps"])
    assert any(step.needs for step in workflow.steps.values())
    for step_id, step in workflow.steps.items():
        declared = raw["steps"][step_id]
        needs = declared.get("needs", [])
        assert list(step.needs) == ([needs] if isinstance(needs, str) else needs)
        assert (step.spec.command if step.kind == "run" else None) == declared.get("run")
    assert workflow.env == {name: str(value) for name, value in raw.get("env", {}).items()}


def test_defaults_propagate_and_steps_override_them(tmp_path: Path) -> None:
    workflow = load_workflow(
        write(
            tmp_path,
            """\
        defaults:
          timeout: 10m
          retry: {attempts: 2, backoff: 250ms, max_backoff: 10s, jitter: 0.5}
          worktree: false
        steps:
          plain: {run: x}
          shorthand: {run: x, retry: 3}
          partial: {run: x, retry: {backoff: 2s}, timeout: 30s, worktree: true}
        """,
        )
    )
    plain, shorthand, partial = workflow.steps.values()
    assert plain.timeout_s == 600.0
    assert plain.retry == RetryPolicy(attempts=2, backoff_s=0.25, max_backoff_s=10.0, jitter=0.5)
    assert plain.worktree is False
    # `retry: 3` changes only the attempts; the rest still comes from defaults.
    assert shorthand.retry == RetryPolicy(attempts=3, backoff_s=0.25, max_backoff_s=10.0, jitter=0.5)
    assert partial.retry == RetryPolicy(attempts=2, backoff_s=2.0, max_backoff_s=10.0, jitter=0.5)
    assert partial.timeout_s == 30.0
    assert partial.worktree is True


def test_without_defaults_steps_get_the_model_defaults(tmp_path: Path) -> None:
    workflow = load_workflow(write(tmp_path, "steps:\n  a: {run: x, retry: 4}\n"))
    step = workflow.steps["a"]
    assert step.timeout_s is None
    assert step.worktree is True
    assert step.retry == RetryPolicy(attempts=4)
    assert workflow.fail_fast is True
    assert workflow.max_parallel is None
    assert workflow.base == "working"


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ("250ms", 0.25),
        ("10s", 10.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("1h30m", 5400.0),
        ("1.5s", 1.5),
        ("45", 45.0),
        ("2.5", 2.5),
    ],
)
def test_durations_parse(tmp_path: Path, written: str, seconds: float) -> None:
    workflow = load_workflow(write(tmp_path, f"steps:\n  a: {{run: x, timeout: {written}}}\n"))
    assert workflow.steps["a"].timeout_s == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "   ", "10", "s", "10x", "1m 30s", "-5s", "5 m", "1.s", "10S"])
def test_parse_duration_rejects_malformed_text(text: str) -> None:
    assert parse_duration(text) is None


def test_needs_accepts_a_single_string_and_drops_repeats(tmp_path: Path) -> None:
    workflow = load_workflow(
        write(
            tmp_path,
            """\
        steps:
          a: {run: x}
          b: {run: x}
          one: {run: x, needs: a}
          many: {run: x, needs: [b, a, b]}
        """,
        )
    )
    assert workflow.steps["one"].needs == ("a",)
    assert workflow.steps["many"].needs == ("b", "a")


def test_env_values_are_strings_as_written(tmp_path: Path) -> None:
    workflow = load_workflow(
        write(
            tmp_path,
            """\
        env: {COUNT: 3, DEBUG: true, RATIO: 0.5, NAME: demo}
        steps:
          a: {run: x, env: {PORT: 8080}}
        """,
        )
    )
    assert workflow.env == {"COUNT": "3", "DEBUG": "true", "RATIO": "0.5", "NAME": "demo"}
    assert dict(workflow.steps["a"].env) == {"PORT": "8080"}


def test_name_defaults_to_the_file_stem(tmp_path: Path) -> None:
    unnamed = load_workflow(write(tmp_path, "steps:\n  a: {run: x}\n", name="nightly-checks.yml"))
    named = load_workflow(write(tmp_path, "name: nightly\nsteps:\n  a: {run: x}\n", name="other.yml"))
    assert unnamed.name == "nightly-checks"
    assert named.name == "nightly"


def test_agent_step_and_setup(tmp_path: Path) -> None:
    workflow = load_workflow(
        write(
            tmp_path,
            """\
        base: head
        setup:
          copy: .env
          run: npm ci
        steps:
          review:
            agent: {prompt: Review this branch, command: my-agent, heartbeat: 2m}
          quick:
            agent: {prompt: Say hi}
        """,
        )
    )
    review = workflow.steps["review"].spec
    quick = workflow.steps["quick"].spec
    assert isinstance(review, AgentSpec) and isinstance(quick, AgentSpec)
    assert (review.prompt, review.command, review.heartbeat_s) == ("Review this branch", "my-agent", 120.0)
    assert quick.command is None
    assert workflow.steps["review"].kind == "agent"
    assert workflow.base == "head"
    assert workflow.setup.copy == (".env",)
    assert workflow.setup.run == "npm ci"


def test_steps_remember_their_line(tmp_path: Path) -> None:
    workflow = load_workflow(write(tmp_path, "# header\nsteps:\n  a: {run: x}\n  b:\n    run: y\n"))
    assert workflow.steps["a"].line == 3
    assert workflow.steps["b"].line == 4


# Finding the workflow of a repository


def test_find_workflow_prefers_treeflow_yml(tmp_path: Path) -> None:
    root = write(tmp_path, "steps: {}\n")
    write(tmp_path, "steps: {}\n", name=".treeflow/other.yml")
    assert find_workflow(tmp_path) == root


def test_find_workflow_takes_the_single_file_in_dot_treeflow(tmp_path: Path) -> None:
    only = write(tmp_path, "steps: {}\n", name=".treeflow/checks.yaml")
    # Agent protocol files live in .treeflow/ too and must not count as workflows.
    write(tmp_path, "{}", name=".treeflow/task.json")
    write(tmp_path, "do it", name=".treeflow/PROMPT.md")
    assert find_workflow(tmp_path) == only


def test_find_workflow_refuses_to_guess_between_several(tmp_path: Path) -> None:
    write(tmp_path, "steps: {}\n", name=".treeflow/a.yml")
    write(tmp_path, "steps: {}\n", name=".treeflow/b.yaml")
    with pytest.raises(FileNotFoundError) as caught:
        find_workflow(tmp_path)
    message = str(caught.value)
    assert "several workflows" in message
    assert ".treeflow/a.yml" in message
    assert ".treeflow/b.yaml" in message


@pytest.mark.parametrize("with_empty_folder", [False, True])
def test_find_workflow_says_what_it_looked_for(tmp_path: Path, with_empty_folder: bool) -> None:
    if with_empty_folder:
        (tmp_path / ".treeflow").mkdir()
    with pytest.raises(FileNotFoundError) as caught:
        find_workflow(tmp_path)
    message = str(caught.value)
    assert str(tmp_path) in message
    assert "treeflow.yml" in message
    assert ".treeflow/*.yml" in message


def test_pool_settings_are_read_with_their_defaults(tmp_path: Path) -> None:
    steps = "steps:\n  a: {run: 'true'}\n"
    default = load_workflow(write(tmp_path, steps)).pool
    assert (default.enabled, default.size, default.idle_s, default.keep) == (True, None, 3600.0, ())
    chosen = load_workflow(
        write(tmp_path, "pool: {size: 3, idle: 10m, keep: [node_modules, .venv]}\n" + steps)
    )
    assert (chosen.pool.size, chosen.pool.idle_s, chosen.pool.keep) == (3, 600.0, ("node_modules", ".venv"))
    assert not load_workflow(write(tmp_path, "pool: false\n" + steps)).pool.enabled
    assert not load_workflow(write(tmp_path, "pool: {size: 0}\n" + steps)).pool.enabled


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        ("pool: {size: -1}\n", 1, 14, ("pool.size",)),
        ("pool: {idle: soon}\n", 1, 14, ("pool.idle", "bad duration")),
        ("pool: {keep: [../x]}\n", 1, 15, ("pool.keep",)),
        ("pool: {kept: [x]}\n", 1, 8, ("unknown key", "keep")),
        ("setup: {when_changed: [package-lock.json]}\n", 1, 23, ("when_changed", "setup.run")),
    ],
)
def test_bad_pool_and_when_changed(
    tmp_path: Path, text: str, line: int, column: int, words: tuple[str, ...]
) -> None:
    assert_error(only_error(write(tmp_path, text + "steps:\n  a: {run: 'true'}\n")), line, column, *words)

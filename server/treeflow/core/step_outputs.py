"""A step's outputs: the `$TREEFLOW_OUTPUT` file it writes, read into names and values.

The file holds `name=value` lines and, for values of several lines, GitHub Actions' form

    name<<DELIMITER
    first line
    second line
    DELIMITER

Empty lines are ignored, a name given twice keeps its last value, and a line may end in `\\r\\n`.
treeflow makes the file afresh for each attempt, in the run's log folder (inside git's own folder,
so it is never part of a step's work, whether or not the step has a worktree).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from treeflow.core.matrix import safe_name
from treeflow.quoting import quoted

OUTPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
OUTPUT_NAME_RULE = "1 to 64 letters, digits, '_' or '-', not starting with a digit or '-'"
MAX_OUTPUT_BYTES = 1024 * 1024


class OutputsError(ValueError):
    """An outputs file that cannot be read; ``line`` is 1-based, 0 for the file as a whole."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line
        self.message = message


def outputs_file(log_dir: Path, step_id: str, attempt: int) -> Path:
    """Where attempt ``attempt`` of ``step_id`` writes its outputs (a step's safe name cannot end
    in `.<number>`, so no two steps' files share a name)."""
    return log_dir / f"{safe_name(step_id)}.{attempt}.outputs"


def read_outputs(path: Path) -> dict[str, str]:
    """The outputs in ``path``; none when it is gone. Raises OutputsError, or OSError when it
    cannot be read."""
    try:
        # Most steps write no outputs: an empty file is known from its size alone.
        if os.stat(path).st_size == 0:
            return {}
        with path.open("rb") as file:
            data = file.read(MAX_OUTPUT_BYTES + 1)
    except FileNotFoundError:
        return {}
    if len(data) > MAX_OUTPUT_BYTES:
        raise OutputsError(0, f"larger than {MAX_OUTPUT_BYTES // 1024} KiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise OutputsError(line, "not UTF-8 text") from None
    return parse_outputs(text)


def parse_outputs(text: str) -> dict[str, str]:
    """The outputs ``text`` sets. Raises OutputsError, and nothing else, for any text."""
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    outputs: dict[str, str] = {}
    index = 0
    while index < len(lines):
        line, number = lines[index], index + 1
        index += 1
        if not line:
            continue
        heredoc, equals = line.find("<<"), line.find("=")
        if heredoc >= 0 and (equals < 0 or heredoc < equals):
            name, delimiter = line[:heredoc], line[heredoc + 2 :]
            _check_name(name, number)
            if not delimiter:
                raise OutputsError(number, f"`{quoted(name)}<<` needs a delimiter after `<<`")
            try:
                end = lines.index(delimiter, index)
            except ValueError:
                message = f"`{quoted(name)}<<{quoted(delimiter)}` has no closing line `{quoted(delimiter)}`"
                raise OutputsError(number, message) from None
            value = "\n".join(lines[index:end])
            index = end + 1
        elif equals >= 0:
            name, value = line[:equals], line[equals + 1 :]
            _check_name(name, number)
        else:
            raise OutputsError(number, "expected `name=value` or `name<<DELIMITER`")
        if "\0" in value:
            raise OutputsError(number, f"the value of `{name}` holds a NUL byte, which no variable can hold")
        outputs[name] = value
    return outputs


def _check_name(name: str, line: int) -> None:
    if not OUTPUT_NAME.fullmatch(name):
        raise OutputsError(line, f"bad output name {quoted(repr(name))}: use {OUTPUT_NAME_RULE}")


def output_variable(step_id: str, name: str) -> str:
    """The environment variable a dependent step reads output ``name`` of ``step_id`` from."""
    return f"TREEFLOW_NEEDS_{_variable_part(step_id)}_OUTPUTS_{_variable_part(name)}"


def output_variables(outputs: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """Each output of each step in ``outputs`` (step: name: value) under its variable's name."""
    return {
        output_variable(step_id, name): value
        for step_id, values in outputs.items()
        for name, value in values.items()
    }


def _variable_part(name: str) -> str:
    return name.upper().replace("-", "_")

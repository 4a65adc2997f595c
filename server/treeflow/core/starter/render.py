"""A `Starter` as the text of treeflow.yml: plain block YAML, a comment above each step saying
where its command comes from."""

from __future__ import annotations

import yaml

from treeflow.core.starter.model import FoundSetup
from treeflow.core.starter.plan import Starter, StarterStep

NAME = "checks"
_INDENT = "    "
_HEADER = """\
# A starter workflow, made by treeflow from {sources}.
# Each step runs in its own git worktree and branch; steps without `needs` start at once.
# Edit it freely: `treeflow validate` checks it, `treeflow run` runs it.
"""
_NOTHING_FOUND = """\
# A starter workflow, made by treeflow, which found no lint, test or build commands here
# (package.json scripts, pyproject.toml tools, Makefile targets, .github/workflows jobs).
# Each step runs in its own git worktree and branch. Replace the step below with yours:
#   lint:  {run: ruff check .}
#   test:  {run: pytest -q}
#   build: {run: make build, needs: [lint, test]}
"""
FALLBACK_STEP = StarterStep("hello", 'echo "treeflow ran this step in its own worktree: $PWD"', (), "")


def render(starter: Starter) -> str:
    if starter.sources:
        lines = [_HEADER.format(sources=", ".join(starter.sources))]
        steps = starter.steps
    else:
        lines = [_NOTHING_FOUND]
        steps = (FALLBACK_STEP,)
    lines.append(f"\nname: {NAME}\n")
    if starter.setup is not None:
        lines.append(_setup(starter.setup, starter.not_ignored))
    lines.append("\nsteps:\n")
    lines.extend(_step(step) for step in steps)
    return "".join(lines)


def _setup(setup: FoundSetup, not_ignored: tuple[str, ...]) -> str:
    warning = ""
    if not_ignored:
        names = " and ".join(not_ignored)
        warning = f"# Add {names} to .gitignore: otherwise each step's branch commits what setup installs.\n"
    text = warning + (
        "# Installs the dependencies in each worktree, again only when these files change.\n"
        "setup:\n"
        f"  run: {_scalar(setup.run, _INDENT)}\n"
        f"  when_changed: {_flow(setup.when_changed)}\n"
    )
    if setup.keep:
        text += "# What setup installs stays in worktrees the pool hands on.\n"
        text += f"pool:\n  keep: {_flow(setup.keep)}\n"
    return text


def _step(step: StarterStep) -> str:
    first_line = step.origin.splitlines()[0] if step.origin else ""
    # YAML allows no control characters, not even in a comment.
    shown = "".join(character if character.isprintable() else "?" for character in first_line)
    comment = f"  # {shown}\n" if shown else ""
    text = f"{comment}  {step.id}:\n    run: {_scalar(step.run, _INDENT + '  ')}\n"
    if step.needs:
        text += f"    needs: {_flow(step.needs)}\n"
    return text


def _scalar(value: str, indent: str) -> str:
    """``value`` as a YAML scalar: a literal block for several lines, plain where YAML reads it
    back unchanged, else quoted."""
    if "\n" in value:
        block = "|-\n" + "".join(f"{indent}{line}\n" if line.strip() else "\n" for line in value.split("\n"))
        if _reads_back(block.rstrip("\n"), value):
            return block.rstrip("\n")
        value_text: str = yaml.safe_dump(value, default_style='"', width=1 << 30)
        return value_text.rstrip("\n")
    plain: str = yaml.safe_dump(value, width=1 << 30).removesuffix("\n...\n").rstrip("\n")
    return plain


def _reads_back(text: str, expected: str) -> bool:
    try:
        loaded = yaml.safe_load(f"key: {text}\n")
    except yaml.YAMLError:
        return False
    return isinstance(loaded, dict) and loaded.get("key") == expected


def _flow(items: tuple[str, ...]) -> str:
    text: str = yaml.safe_dump(list(items), default_flow_style=True, width=1 << 30)
    return text.strip()

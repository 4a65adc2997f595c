"""package.json: the scripts that lint, test or build, run with the package manager its lockfile names."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from treeflow.core.starter.model import Found, FoundCommand, FoundSetup, Role


@dataclass(frozen=True)
class PackageManager:
    name: str
    install: str
    lockfile: str | None

    def run_script(self, script: str) -> str:
        if self.name == "npm" and script == "test":
            return "npm test"
        return f"{self.name} run {shlex.quote(script)}"


# In order of preference when a repository holds several lockfiles.
_BY_LOCKFILE: tuple[tuple[str, str, str], ...] = (
    ("pnpm-lock.yaml", "pnpm", "pnpm install --frozen-lockfile"),
    ("bun.lock", "bun", "bun install --frozen-lockfile"),
    ("bun.lockb", "bun", "bun install --frozen-lockfile"),
    ("yarn.lock", "yarn", "yarn install --frozen-lockfile"),
    ("package-lock.json", "npm", "npm ci"),
    ("npm-shrinkwrap.json", "npm", "npm ci"),
)
_WITHOUT_LOCKFILE = {
    "npm": "npm install",
    "pnpm": "pnpm install",
    "yarn": "yarn install",
    "bun": "bun install",
}

_CHECK_WORDS = frozenset({"lint", "eslint", "stylelint", "typecheck", "types", "tsc", "check"})
_TEST_WORDS = frozenset({"test", "tests", "unit", "spec", "coverage"})
_BUILD_WORDS = frozenset({"build", "compile", "bundle"})
_SKIPPED_WORDS = frozenset(
    {"watch", "dev", "serve", "start", "debug", "open", "preview", "storybook"}  # never end
    | {"clean", "fix", "update", "install", "prepare"}  # change the checkout
    | {"deploy", "publish", "release"}  # reach outside it
)
_WRITES = re.compile(r"--watch\b|--write\b|--fix\b|\bpublish\b|no test specified")
_WORDS = re.compile(r"[^a-z0-9]+")


def find(folder: Path) -> Found | None:
    path = folder / "package.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    scripts = manifest.get("scripts") if isinstance(manifest, dict) else None
    if not isinstance(scripts, dict):
        return None
    manager = package_manager(folder, manifest.get("packageManager"))
    commands = []
    for name, body in scripts.items():
        role = script_role(name, body) if isinstance(body, str) else None
        if role is not None:
            origin = f"package.json scripts.{name}: {body}"
            commands.append(FoundCommand(name, manager.run_script(name), role, origin))
    if not commands:
        return None
    when_changed = (manager.lockfile,) if manager.lockfile else ("package.json",)
    setup = FoundSetup(manager.install, when_changed, keep=("node_modules",))
    return Found("package.json", manager.name, tuple(commands), setup)


def package_manager(folder: Path, declared: object) -> PackageManager:
    """The manager the lockfile names, else the `packageManager` field (`pnpm@9.1.0`), else npm."""
    for lockfile, name, install in _BY_LOCKFILE:
        if (folder / lockfile).is_file():
            if name == "yarn" and (folder / ".yarnrc.yml").is_file():
                install = "yarn install --immutable"  # Yarn 2 and later
            return PackageManager(name, install, lockfile)
    name = declared.split("@", 1)[0] if isinstance(declared, str) else "npm"
    if name not in _WITHOUT_LOCKFILE:
        name = "npm"
    return PackageManager(name, _WITHOUT_LOCKFILE[name], None)


def script_role(name: str, body: str) -> Role | None:
    """The role of the script ``name`` running ``body``; None for one a starter should not run."""
    words = set(_WORDS.split(name.lower())) - {""}
    lifecycle_hook = re.match(r"(pre|post)(test|build|lint)", name.lower())
    if words & _SKIPPED_WORDS or _WRITES.search(body) or lifecycle_hook:
        return None
    if words & _CHECK_WORDS:
        return Role.CHECK
    if words & _TEST_WORDS:
        return Role.TEST
    if words & _BUILD_WORDS:
        return Role.BUILD
    return None

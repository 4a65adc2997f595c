"""A stand-in for a coding agent, so that the example runs without an account: it reads the failure
in its prompt (`TREEFLOW_PROMPT`, which the workflow fills from `${{ failure.log_tail }}`) and fixes
the one function the failure names, as an agent that works one failure at a time would. With two
bugs in calc.py, the tests pass only after its second fix, in round 3. With `FAKE_FIXER_GIVE_UP` set
it fails instead, as an agent that cannot fix anything would.
"""

import os
import re
from pathlib import Path

FIXES = {
    "add": ("return a - b", "return a + b"),
    "multiply": ("return a + b", "return a * b"),
}

prompt = os.environ.get("TREEFLOW_PROMPT", "")
print(f"fake fixer, round {os.environ.get('TREEFLOW_ROUND', '?')}: reading the failure")
if os.environ.get("FAKE_FIXER_GIVE_UP"):
    print("giving up")
    raise SystemExit(1)
failed = re.search(r"^FAIL (\w+)\(", prompt, re.MULTILINE)
if failed is None or failed.group(1) not in FIXES:
    print("no failure I know how to fix")
    raise SystemExit(1)
name = failed.group(1)
wrong, right = FIXES[name]
source = Path("calc.py")
lines = source.read_text().split("\n")
start = lines.index(f"def {name}(a: int, b: int) -> int:")
lines[start + 1] = lines[start + 1].replace(wrong, right)
source.write_text("\n".join(lines))
print(f"fixed {name}() in calc.py")

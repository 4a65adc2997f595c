"""The calculator's tests; run as `python3 test_calc.py [add|multiply]` (no argument: both).

They stop at the first failure, as a real test run cut short would, so each round of the fix loop
shows the fixer one failure.
"""

import sys

from calc import add, multiply

CASES = {
    "add": [(add, (2, 3), 5), (add, (-1, 1), 0)],
    "multiply": [(multiply, (2, 3), 6), (multiply, (4, 0), 0)],
}

for name in sys.argv[1:] or list(CASES):
    for function, arguments, expected in CASES[name]:
        got = function(*arguments)
        if got != expected:
            print(f"FAIL {function.__name__}{arguments}: got {got}, expected {expected}")
            sys.exit(1)
        print(f"ok   {function.__name__}{arguments} == {expected}")
print("all tests passed")

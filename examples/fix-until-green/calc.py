"""A small calculator with two bugs for the fixer to find, one per round."""


def add(a: int, b: int) -> int:
    return a - b


def multiply(a: int, b: int) -> int:
    return a + b

"""No test waits a fixed time for something it could observe: a literal sleep
(`time.sleep(1.5)`, `page.wait_for_timeout(1300)`) is allowed only as the step of a
loop that polls a condition (see `tests.helpers.wait_for`, `Visit.settle`,
`Visit.run_timers` and `tests.helpers.MovableClock`)."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

TESTS = Path(__file__).resolve().parent
SLEEPS = {"sleep", "wait_for_timeout"}


def fixed_waits(tree: ast.AST) -> list[int]:
    """Lines of sleep calls with a literal duration outside any loop."""
    found: list[int] = []

    def visit(node: ast.AST, in_loop: bool) -> None:
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if (name in SLEEPS and not in_loop and node.args
                    and isinstance(node.args[0], ast.Constant) and node.args[0].value):
                found.append(node.lineno)
        loop = isinstance(node, ast.While | ast.For | ast.AsyncFor)
        for child in ast.iter_child_nodes(node):
            # a nested function is not run by the loop it is written in
            visit(child, (in_loop or loop) and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef))

    visit(tree, False)
    return found


def offenders(check: Callable[[ast.AST], list[int]]) -> dict[str, list[int]]:
    """The test files where `check` finds lines, with those lines."""
    return {str(path.relative_to(TESTS)): lines for path in sorted(TESTS.rglob("*.py"))
            if (lines := check(ast.parse(path.read_text())))}


def test_no_test_sleeps_a_fixed_time() -> None:
    assert offenders(fixed_waits) == {}


def test_the_check_finds_a_fixed_wait_and_lets_a_polling_step_be() -> None:
    fixed = ast.parse("import time\ntime.sleep(1.5)\npage.wait_for_timeout(1300)\n")
    polling = ast.parse("while not done():\n    time.sleep(0.05)\nvisit.sleep(0)\n")
    assert fixed_waits(fixed) == [2, 3] and fixed_waits(polling) == []


def expression_waits(tree: ast.AST) -> list[int]:
    """Lines of `wait_for_function` given a JavaScript expression that is not a function.
    Playwright evals such an expression again at every poll, in the page: the first
    time from DevTools, past the page's Content-Security-Policy, but the later polls
    under it, so on a page without 'unsafe-eval' (the dashboard, csp.html) a condition
    not true at once fails with an EvalError instead of being waited for. A function is
    evaled once and then called."""
    found: list[int] = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "wait_for_function" and node.args):
            first = node.args[0]
            parts = ([first] if isinstance(first, ast.Constant)
                     else first.values if isinstance(first, ast.JoinedStr) else [])
            text = "".join(str(p.value) for p in parts if isinstance(p, ast.Constant))
            if parts and "=>" not in text and not text.lstrip().startswith(("function", "async")):
                found.append(node.lineno)
    return found


def test_every_wait_for_function_is_given_a_function() -> None:
    assert offenders(expression_waits) == {}


def test_the_check_finds_an_expression_wait_and_lets_a_function_be() -> None:
    tree = ast.parse("page.wait_for_function(\"!document.getElementById('error').hidden\")\n"
                     "page.wait_for_function(f\"document.title === '{t}'\")\n"
                     "page.wait_for_function(\"() => scrollY > 0\")\n"
                     "page.wait_for_function(\"n => n > 1\", arg=2)\n"
                     "page.wait_for_function(CONDITION)\n")
    assert expression_waits(tree) == [1, 2]

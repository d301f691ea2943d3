"""No test waits a fixed time for something it could observe: a literal sleep
(`time.sleep(1.5)`, `page.wait_for_timeout(1300)`) is allowed only as the step of a
loop that polls a condition (see `tests.helpers.wait_for`, `Visit.settle`,
`Visit.run_timers` and `tests.helpers.MovableClock`)."""

from __future__ import annotations

import ast
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


def test_no_test_sleeps_a_fixed_time() -> None:
    waits = {str(path.relative_to(TESTS)): lines for path in sorted(TESTS.rglob("*.py"))
             if (lines := fixed_waits(ast.parse(path.read_text())))}
    assert waits == {}


def test_the_check_finds_a_fixed_wait_and_lets_a_polling_step_be() -> None:
    fixed = ast.parse("import time\ntime.sleep(1.5)\npage.wait_for_timeout(1300)\n")
    polling = ast.parse("while not done():\n    time.sleep(0.05)\nvisit.sleep(0)\n")
    assert fixed_waits(fixed) == [2, 3] and fixed_waits(polling) == []

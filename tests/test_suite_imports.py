"""The suite imports each test module once: a second copy of a module keeps a second copy of its state."""

from __future__ import annotations

import sys


def test_no_test_module_is_imported_under_two_names() -> None:
    # Without tests/__init__.py pytest imports tests/test_x.py as `test_x`, while `from tests.test_x
    # import ...` makes `tests.test_x`: two Pulumi mock loops, and the program tests failed by order.
    collected = {name for name in sys.modules if name.startswith("test_")}
    assert collected == set(), f"imported outside the tests package: {sorted(collected)}"

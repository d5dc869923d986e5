"""The test suite: one package, so `from tests.test_x import ...` is the module pytest collected, not a second copy."""

"""The whole suite's plugins (``tests/`` and ``e2e/``): registered once, here, for both."""

#: a hung test's stacks and event loops, and its end (pytest-timeout does the timing)
pytest_plugins = ("tests.timeouts",)

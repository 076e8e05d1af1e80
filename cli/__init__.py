"""The ``conductor`` command: the composition root at the top of the house.

Each command imports what it needs when it runs, so ``conductor --help`` loads neither
discord.py, nor the database, nor the browser.
"""

from cli.main import main

__all__ = ["main"]

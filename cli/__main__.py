"""``python -m cli``: the ``conductor`` command without its console script."""

from cli import main

main()

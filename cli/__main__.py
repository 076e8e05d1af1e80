"""``python -m cli``: the ``conductor`` command without its console script."""

from cli.main import main

main()

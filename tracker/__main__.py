"""``python -m tracker`` is the ``tracker`` command."""

from .cli import main

main()

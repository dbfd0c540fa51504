"""``python -m framework.cli``: the ``fw`` command."""

from . import console

console()

"""Operator surfaces: the ``upshift`` CLI (``cli``) and its commands beside it (``demo``,
``inventory``, ``plan``, ``status``; ``serve`` and ``worker`` are in ``cli``). The only layer
that may import ``simulator``; nothing below imports it. Imports nothing itself, so the
runtimes never pay for click or rich.
"""

__all__: list[str] = []  # import the modules themselves; nothing is re-exported

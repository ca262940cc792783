"""Upshift's library: everything the functions in ``functions/`` stand on.

The rooms (README "Layout"): ``domain`` (the rules), ``engine`` (how a stage runs), ``bus`` and
``store`` (at-least-once delivery, compare-and-set state), ``clouds`` (one package per vendor
client), ``runtime`` (what hosts functions) and ``ops`` (the operator surfaces, the only layer
that imports ``simulator``). The flat modules here are the base every room may use: ``errors``,
``log``, ``clock``, ``yamlconf``, ``limits`` (every edge's limits) and ``crashpoints``.
"""

__all__: list[str] = []  # the rooms and base modules are imported by their own names

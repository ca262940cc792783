"""One module per function. Each is thin: parse → decide → one call → emit.

Functions never import each other: what two share lives in ``shared/`` (``track_job`` finds a
stage's call through the manifest, :mod:`shared.engine.calls`)."""

__all__: list[str] = []

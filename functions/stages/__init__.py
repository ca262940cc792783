"""One function per vendor call, each consuming ``stage.requested`` filtered by kind and stage.

A stage function's module is ``functions.stages.<kind prefix>_<stage>`` and holds its
:class:`~shared.engine.contract.VendorCall` as ``CALL``; ``_huawei`` and ``_kafka`` hold what the
modules of one vendor share. Nothing here imports them: a deployed function loads its own module
only, and ``track_job`` finds a job's status call through the manifest
(:func:`shared.engine.calls.call_for`), importing that one module on first use.
"""

from __future__ import annotations

__all__: list[str] = []

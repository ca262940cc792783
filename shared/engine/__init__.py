"""The stage engine: what every stage function shares — window gate, claim → ONE vendor call →
record → reconcile → emit — and the contract a vendor-specific ``VendorCall`` fills in.

``stage`` (``run_stage``, the contract), ``attempt`` (claim → call → record → reconcile),
``contract`` (``VendorCall`` and its answers), ``consequences`` (the events a stage emits),
``polling`` (when to look at a job), ``vendor_clock`` ("recent" in the vendor's clock), ``calls``
(a stage's call found through the manifest, for ``track_job``).
"""

__all__: list[str] = []

"""The stage engine: what every stage function shares — window gate, claim → ONE vendor call →
record → reconcile → emit — and the contract a vendor-specific :class:`VendorCall` fills in.
"""

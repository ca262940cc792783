"""Operator surfaces: the ``upshift`` CLI and its commands (serve, worker, demo, plan, status,
inventory, simulate). The only layer that may import ``simulator``; nothing below imports it.
"""

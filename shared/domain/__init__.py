"""The domain rules, pure and synchronous: the fleet file, versions and tracks, maintenance
windows, waves, the stage order of each kind, releases and the planning decision, and the
per-kind target options. Imports nothing from the engine, the runtimes or the operator layer.
"""

__all__: list[str] = []

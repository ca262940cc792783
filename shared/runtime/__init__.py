"""The runtimes that host functions, and what they share:

* ``function`` — the function contract (``@upshift_function``, ``Context``, ``HttpReply``);
* ``manifest`` — ``serverless.yml``, the one place functions are wired to triggers;
* ``host`` — the bus host: embedded (every function in one process) or a worker (a subset);
* ``server`` — aiohttp in front of a host: CloudEvents ingress and the ``http`` functions;
* ``framework`` — the functions-framework targets: one function per deploy.

Kept import-light: this package imports none of its modules, and ``function`` and ``manifest``
load no web framework, CLI or terminal UI, so a deployed function loads only its own module.
"""

__all__: list[str] = []  # import the modules themselves; nothing is re-exported

"""The runtimes that host functions: the function contract (``function``), the manifest
(``serverless.yml``), the bus host (embedded: all functions in one process; worker: a subset),
the aiohttp server (CloudEvents ingress + ``http`` functions) and the functions-framework
targets (one function per deploy). Kept import-light: a deployed function loads only its own.
"""

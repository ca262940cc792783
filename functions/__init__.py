"""One module per function. Each is thin: parse → decide → one call → emit."""

"""Browser tests: the dashboard in real headless Chromium (Debian's), driven by Playwright."""

"""Task YAMLs and their data: the bundled toy suite (``toy/``) and the real suites (``real/``)."""

"""The ``fervid`` command line: the only package that reaches every layer."""

"""The running fervid system: configuration, Ray actors, metrics and the ``fervid`` command line."""

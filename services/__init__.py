"""The running fervid system on Ray: configuration, actors, controller and metrics."""

"""TensorFlow's environment, set by process entry points before Keras is imported.

Setting it at import time of a library package changed it for every process that merely imported
fervid; instead each entry point (the CLI, the service's actors, the training job, the test
session) calls :func:`configure_tensorflow` first. An explicit setting in the environment wins.
"""
from __future__ import annotations

import os

TRAINING = "training"
"""Training in this process: oneDNN off (it crashed there)."""
SERVING = "serving"
"""The service's inference actors: TensorFlow's default, oneDNN on (measured faster)."""
INTERACTIVE = "interactive"
"""A command whose stderr a person reads (``predict``, ``evaluate``, ``app``): oneDNN off, because
TensorFlow then prints its banner on stderr at import, which no log level silences."""
PURPOSES = (TRAINING, SERVING, INTERACTIVE)


def configure_tensorflow(purpose: str = SERVING) -> None:
    """Quiet TensorFlow's C++ logs and choose oneDNN for what this process does.

    TensorFlow 2.21's oneDNN kernels intermittently corrupted the heap ("free(): invalid size",
    SIGABRT) while *training* Mini-Xception on this project's 2-core CI machines; with them off,
    repeated runs were clean. So training turns oneDNN off. Serving keeps TensorFlow's own default,
    oneDNN on: an alternated A/B of the classifier (``python -m fervid.benchmarks.onednn_ab``,
    docs/performance.md) measured it 5% faster at the batch sizes live traffic uses (1 and 4) and
    24% at the default batch of 64, and no crash has been seen while serving.

    Commands run in a terminal turn it off too: with oneDNN on, TensorFlow 2.21 writes two banner
    lines ("oneDNN custom operations are on...") to stderr when it is imported, whatever
    ``TF_CPP_MIN_LOG_LEVEL`` says, and ``fervid predict``/``evaluate``/``app`` promise one line per
    error on stderr. They classify a few faces per call, where the A/B found oneDNN at most ~5%
    faster (and not in every run); an inference actor's stderr goes to Ray's logs instead.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {', '.join(map(repr, PURPOSES))}, not {purpose!r}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if purpose in (TRAINING, INTERACTIVE):
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

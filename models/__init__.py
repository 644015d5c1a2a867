"""Recognition core of fervid: face detection, preprocessing and the expression classifier.

Nothing here imports Ray, ZeroMQ or Qt, so the CLI, the desktop app, the service and the
evaluation all share exactly one implementation of each step.
"""

import os as _os

# TensorFlow 2.21's oneDNN kernels intermittently corrupted the heap ("free(): invalid size",
# SIGABRT) while training Mini-Xception on this project's 2-core CI machines; with them off,
# repeated runs were clean. This is the one place fervid sets TensorFlow environment defaults:
# `training` and `services` import this package first, before Keras loads. An explicit setting wins.
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

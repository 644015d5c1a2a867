"""The running fervid system: configuration, Ray actors, metrics and the ``fervid`` command line."""

import models as _models  # noqa: F401,E402  (sets TensorFlow environment defaults before Keras loads)

"""Training and evaluation of the expression classifier (never imported by the running service)."""

import models as _models  # noqa: F401,E402  (sets TensorFlow environment defaults before Keras loads)

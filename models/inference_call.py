"""The one function that runs a loaded Keras model on a batch: a frozen graph where it pays.

``model.predict_on_batch`` runs the model's layers as a graph whose weights are variables, so
TensorFlow must read every variable and run every batch normalisation as its own op on each call;
at the batch sizes live traffic has (one to four faces) that per-op work, not arithmetic, is most
of the time. Freezing the graph (weights turned into constants) lets TensorFlow's graph optimiser
fold each batch normalisation into the convolution before it and fuse what follows, once, when the
model is loaded. ``python -m fervid.benchmarks.inference`` times both calls in the same rounds
(``reference`` in its JSON); docs/performance.md has the figures.

The frozen graph exists only on the TensorFlow backend; elsewhere (JAX on a GPU machine), or if a
model cannot be frozen, the call is ``predict_on_batch`` as before, with the same results.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

BatchCall = Callable[[np.ndarray], np.ndarray]
"""float32 (N, 48, 48, 1) in, float32 (N, 7) probabilities out."""

FROZEN = "frozen-graph"
PREDICT_ON_BATCH = "predict_on_batch"


def predict_on_batch_call(model) -> BatchCall:
    """Keras' own batch call: every backend has it."""
    return lambda batch: np.asarray(model.predict_on_batch(batch), dtype=np.float32)


def frozen_graph_call(model) -> BatchCall:
    """The model as a TensorFlow graph with its weights as constants (TensorFlow backend only).

    The input's batch dimension is left open, so one frozen graph serves every batch size and is
    never traced again. Raises whatever TensorFlow raises when a model cannot be frozen.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec([None, *model.inputs[0].shape[1:]], tf.float32)
    traced = tf.function(lambda batch: model(batch, training=False), input_signature=[spec])
    frozen = convert_variables_to_constants_v2(traced.get_concrete_function())

    def call(batch: np.ndarray) -> np.ndarray:
        outputs = frozen(tf.constant(batch, dtype=tf.float32))
        if isinstance(outputs, (list, tuple)):
            outputs = outputs[0]
        return outputs.numpy()

    return call


def named_call(model, name: str) -> BatchCall:
    """The call called ``name`` (``FROZEN`` or ``PREDICT_ON_BATCH``), for benchmarks that time both."""
    calls = {FROZEN: frozen_graph_call, PREDICT_ON_BATCH: predict_on_batch_call}
    if name not in calls:
        raise ValueError(f"call path must be one of {', '.join(calls)}, not {name!r}")
    return calls[name](model)


def best_call(model) -> tuple[str, BatchCall]:
    """The fastest call this backend offers for ``model``, with its name (for benchmarks and logs).

    A model that cannot be frozen (a custom layer TensorFlow's freezer does not know, for instance)
    is served by ``predict_on_batch``: slower, never wrong.
    """
    import keras

    if keras.backend.backend() == "tensorflow":
        try:
            return FROZEN, frozen_graph_call(model)
        except Exception:  # noqa: BLE001 - any failure to freeze means "use the plain call"
            pass
    return PREDICT_ON_BATCH, predict_on_batch_call(model)

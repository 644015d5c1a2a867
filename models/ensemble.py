"""Several trained expression models as one Keras model whose output is the mean of theirs.

Why one model: everything that classifies faces (the service's inference actor, ``fervid analyze``,
``predict``, ``evaluate``, the app) loads one ``.keras`` file through ``EmotionClassifier``. An
ensemble saved as one file is therefore accepted everywhere without a second code path, and its
members run in one compiled call per batch instead of one call each.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fervid.errors import ModelLoadError
from fervid.models.preprocessing import FACE_SIZE


def build_ensemble(members: Sequence) -> "keras.Model":  # noqa: F821 (keras is imported late)
    """A model mapping a 48x48x1 crop to the mean of ``members``' probability vectors."""
    import keras

    if len(members) < 2:
        raise ModelLoadError(f"an ensemble needs at least 2 models, got {len(members)}")
    face = keras.Input((FACE_SIZE, FACE_SIZE, 1), name="face")
    # Each member is wrapped under a name of its own: two Mini-Xceptions share every layer name.
    outputs = [keras.Model(m.inputs[0], m.outputs[0], name=f"member_{i}")(face) for i, m in enumerate(members)]
    return keras.Model(face, keras.layers.Average(name="mean")(outputs), name="ensemble")


def save_ensemble(paths: Sequence[Path], out: Path) -> int:
    """Load each model file (with ``EmotionClassifier.load``'s checks), save their ensemble to ``out``.

    Returns the ensemble's parameter count.
    """
    from fervid.models.classifier import EmotionClassifier

    model = build_ensemble([EmotionClassifier.load(path).model for path in paths])
    try:
        model.save(out)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"--out {out}: cannot write the ensemble ({exc})") from None
    return int(model.count_params())

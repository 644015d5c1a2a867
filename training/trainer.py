"""Single-process training of Mini-Xception (any Keras 3 backend: TensorFlow here, JAX on GPUs).

Writes into the run folder: ``history.csv`` (loss/accuracy per epoch), ``curves.png``,
``best.keras`` (the inference model at its best validation accuracy), ``config.json`` and
``checkpoints/`` (the full training state after every epoch). Re-running the same command after
an interruption resumes from ``checkpoints/`` instead of starting again.
"""
from __future__ import annotations

import json
import math
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from fervid.errors import FervidError
from fervid.models.mini_xception import build_mini_xception
from fervid.models.preprocessing import normalise
from fervid.training.augment import augmented_epoch
from fervid.training.config import TrainConfig
from fervid.training.data import Fer2013, load_fer2013, load_ferplus_votes, validation_mask
from fervid.training.plots import plot_history
from fervid.training.distil import load_teacher, teacher_probabilities
from fervid.training.targets import blend_ferplus, blend_teacher, one_hot

CHECKPOINT_DIR = "checkpoints"
STATE_FILE = "state.json"
TRAIN_STATE_MODEL = "last.keras"


@dataclass(frozen=True)
class PreparedData:
    """Normalised arrays for training and validation (validation targets are plain one-hot)."""

    x_train: np.ndarray  # uint8 crops, augmented and normalised per batch
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def prepare_data(config: TrainConfig, log=print) -> PreparedData:
    """Load the Training rows, split off the fixed validation slice and build the targets.

    With a teacher, its probabilities are blended in last, over the FER2013/FER+ target. The teacher
    is loaded before the CSV is read, so a bad ``--teacher`` is refused at once.
    """
    teacher = load_teacher(config.teacher) if config.teacher else None
    data: Fer2013 = load_fer2013(config.data, usage="Training", limit=config.limit)
    ferplus = load_ferplus_votes(config.ferplus, data) if config.ferplus else None
    val = validation_mask(data.labels, config.validation_fraction, config.seed)
    targets = blend_ferplus(data.labels, ferplus, config.ferplus_weight)
    training_rows = ~val
    if teacher is not None:  # the validation slice's targets are never used: no need to classify it
        targets[training_rows] = blend_teacher(
            targets[training_rows],
            teacher_probabilities(teacher, data.pixels[training_rows], config.teacher_temperature, log),
            config.teacher_weight)
    return PreparedData(
        x_train=data.pixels[training_rows], y_train=targets[training_rows],
        x_val=normalise(data.pixels[val]), y_val=one_hot(data.labels[val]))


class EpochPreparer:
    """Augmented epochs for ``train``, the next one prepared in a thread while the model trains.

    Why: on a GPU the model trains an epoch in about the time one core takes to augment it, so
    preparing epochs in turn left the GPU idle half the time. Each epoch's augmentation is seeded
    by its number, so the arrays are the same either way. On TensorFlow the epochs are prepared
    in turn: a threaded input pipeline beside TensorFlow 2.21's CPU kernels crashed with heap
    corruption on the project's CPU machine (``training.augment``), and the CPU gains nothing there.
    """

    def __init__(self, data: PreparedData, config: TrainConfig, in_background: bool):
        self._prepare = lambda epoch: augmented_epoch(data.x_train, data.y_train, epoch, config.augment,
                                                      config.seed, erasing=config.erasing, mixup=config.mixup)
        self._pool = ThreadPoolExecutor(max_workers=1) if in_background else None
        self._pending: dict[int, Future] = {}

    def get(self, epoch: int, next_epoch: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Epoch ``epoch``'s arrays; start preparing ``next_epoch`` (if any) before returning."""
        pending = self._pending.pop(epoch, None)
        arrays = pending.result() if pending is not None else self._prepare(epoch)
        if self._pool is not None and next_epoch is not None:
            self._pending[next_epoch] = self._pool.submit(self._prepare, next_epoch)
        return arrays

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def build_optimizer(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """AdamW with linear warm-up then cosine decay to zero over the whole run."""
    total = max(1, config.epochs * steps_per_epoch)
    warmup = min(config.warmup_epochs * steps_per_epoch, total // 2)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate * 0.01 if warmup else config.learning_rate,
        decay_steps=max(1, total - warmup), alpha=0.0,
        warmup_target=config.learning_rate if warmup else None, warmup_steps=warmup)
    optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay)
    optimizer.exclude_from_weight_decay(var_names=["bn", "bias", "gamma", "beta"])
    return optimizer


def compile_model(config: TrainConfig, steps_per_epoch: int) -> keras.Model:
    """Build and compile Mini-Xception with the run's optimizer, loss and metric."""
    model = build_mini_xception(width=config.width, dropout=config.dropout)
    model.compile(optimizer=build_optimizer(config, steps_per_epoch),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
                  metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
    return model


class RunCheckpoint(keras.callbacks.Callback):
    """After each epoch: save the full training state, and the model alone when it is the best.

    The state (model, optimizer, epoch, best score) is written to a temporary file and renamed,
    so an interruption mid-write never leaves a checkpoint that cannot be resumed.
    """

    def __init__(self, out: Path, best_score: float, monitor: str = "val_accuracy"):
        super().__init__()
        self.out = out
        self.best_score = best_score
        self.monitor = monitor

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        score = float(logs.get(self.monitor, -math.inf))
        if score > self.best_score:
            self.best_score = score
            save_inference_model(self.model, self.out / "best.keras")
        checkpoints = self.out / CHECKPOINT_DIR
        checkpoints.mkdir(parents=True, exist_ok=True)
        _atomic_save(self.model, checkpoints / TRAIN_STATE_MODEL)
        state = {"completed_epochs": epoch + 1, "best_score": self.best_score, "monitor": self.monitor}
        tmp = checkpoints / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(checkpoints / STATE_FILE)


def _atomic_save(model: keras.Model, path: Path) -> None:
    tmp = path.with_name(path.stem + ".tmp.keras")
    model.save(tmp)
    tmp.replace(path)


def save_inference_model(model: keras.Model, path: Path, weights: list | None = None) -> None:
    """Save an uncompiled copy of ``model`` (with ``weights`` if given) for ``EmotionClassifier``.

    The shipped model needs no optimizer state; leaving it out keeps the file a third of the size.
    The copy is rebuilt from the model's config, not with ``keras.models.clone_model``: Keras 3.15
    compiles a clone of a compiled model with the same optimizer, whose moments were then saved too.
    """
    copy = keras.Model.from_config(model.get_config())
    copy.set_weights(model.get_weights() if weights is None else weights)
    _atomic_save(copy, path)


def create_run_folder(out: Path) -> None:
    """Create the run folder (and its parents), turning the reason it cannot be into one line.

    ``TrainConfig`` already refused a file or a folder without write permission; what is left
    are places only the attempt reveals (say /proc, or a read-only file system when root).
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FervidError(f"{out}: cannot create the run folder ({exc.strerror or exc})") from None


def read_resume_state(out: Path) -> dict | None:
    """The saved state of an interrupted run in ``out``, or None if there is none."""
    state_path = out / CHECKPOINT_DIR / STATE_FILE
    if not (state_path.is_file() and (out / CHECKPOINT_DIR / TRAIN_STATE_MODEL).is_file()):
        return None
    return json.loads(state_path.read_text())


RECIPE_FIELDS = ("epochs", "batch_size", "width", "learning_rate", "weight_decay", "warmup_epochs",
                 "label_smoothing", "ferplus_weight", "teacher", "teacher_weight", "teacher_temperature",
                 "augment", "erasing", "mixup", "dropout",
                 "validation_fraction", "seed", "limit", "workers")


def check_resumable(out: Path, config: TrainConfig) -> None:
    """Refuse to resume a run that was started with a different recipe.

    The learning-rate schedule is fixed when a run starts, so continuing it with, say, more
    epochs would silently train at a learning rate of zero.
    """
    saved_path = out / "config.json"
    if not saved_path.is_file():
        return
    saved = json.loads(saved_path.read_text())
    current = json.loads(config.to_json())
    # A setting added since the run started (erasing, mixup) had its default then.
    before = {k: saved.get(k, TrainConfig.model_fields[k].default) for k in RECIPE_FIELDS}
    changed = [f"{k} {before[k]} -> {current[k]}" for k in RECIPE_FIELDS if before[k] != current[k]]
    if changed:
        raise FervidError(f"{out} holds an interrupted run with other settings ({', '.join(changed)}); "
                          "pass --fresh to start again or choose another --out")


def train(config: TrainConfig, log=print) -> dict:
    """Train, resuming from ``config.out`` when it holds an interrupted run; return a summary."""
    out = Path(config.out)
    keras.utils.set_random_seed(config.seed)
    data = prepare_data(config, log)  # first: a CSV that fails leaves no --out folder behind
    create_run_folder(out)
    steps = math.ceil(len(data.x_train) / config.batch_size)
    log(f"training on {len(data.x_train)} images, validating on {len(data.x_val)} "
        f"(backend {keras.backend.backend()}, width {config.width:g}, {config.epochs} epochs)")

    state = read_resume_state(out) if config.resume else None
    if state:
        check_resumable(out, config)
        initial_epoch, best = state["completed_epochs"], state["best_score"]
        if initial_epoch >= config.epochs:
            log(f"{out} already holds a finished run of {initial_epoch} epochs")
        else:
            log(f"resuming from epoch {initial_epoch} (best val_accuracy so far {best:.4f})")
        model = keras.models.load_model(out / CHECKPOINT_DIR / TRAIN_STATE_MODEL)
    else:
        initial_epoch, best = 0, -math.inf
        model = compile_model(config, steps)
        (out / "history.csv").unlink(missing_ok=True)
    (out / "config.json").write_text(config.to_json())

    if initial_epoch < config.epochs:
        callbacks = [keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
                     RunCheckpoint(out, best)]
        epochs = EpochPreparer(data, config, in_background=keras.backend.backend() != "tensorflow")
        for epoch in range(initial_epoch, config.epochs):
            x, y = epochs.get(epoch, next_epoch=epoch + 1 if epoch + 1 < config.epochs else None)
            model.fit(x, y, batch_size=config.batch_size, epochs=epoch + 1, initial_epoch=epoch,
                      validation_data=(data.x_val, data.y_val), validation_batch_size=512,
                      shuffle=False, verbose=1 if sys.stdout.isatty() else 2, callbacks=callbacks)
        epochs.close()
    summary = json.loads((out / CHECKPOINT_DIR / STATE_FILE).read_text())
    plot_history(out / "history.csv", out / "curves.png")
    summary.update({"best_model": str(out / "best.keras"), "history": str(out / "history.csv"),
                    "curves": str(out / "curves.png")})
    log(f"best val_accuracy {summary['best_score']:.4f}; model saved to {out / 'best.keras'}")
    return summary

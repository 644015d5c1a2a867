"""Data-parallel training on a Ray cluster with Ray Train's ``TensorflowTrainer``.

Keras 3's ``model.fit`` breaks under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585,
ray-project/ray#47464), so each worker runs an explicit step instead: ``strategy.run`` around a
``tf.GradientTape`` with ``tf.nn.compute_average_loss``, on a Keras 3 model built inside
``strategy.scope()``. The model, data pipeline, targets and optimizer are the single-process
ones (``training.trainer``), so both paths train the same thing.

Each epoch, worker 0 scores the validation slice and reports a Ray Train checkpoint holding
the latest training state, the best model so far and the history; re-running the same command
resumes from the latest checkpoint in ``OUT/ray``. The driver copies ``best.keras``,
``history.csv`` and ``curves.png`` into ``OUT``, exactly like the single-process path.
"""
from __future__ import annotations

import csv
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

from fervid.errors import FervidError
from fervid.media.files import check_regular_file
from fervid.training.config import TrainConfig

HISTORY_FIELDS = ("epoch", "accuracy", "loss", "val_accuracy", "val_loss")


def _worker_loop(loop_config: dict) -> None:
    """Runs in every Ray Train worker (TensorFlow backend, TF_CONFIG set by Ray).

    ``loop_config["config"]`` is the driver's validated ``TrainConfig`` with absolute paths.
    """
    from fervid.models.backend_env import TRAINING, configure_tensorflow

    configure_tensorflow(TRAINING)  # before TensorFlow loads in this worker process
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras
    import numpy as np
    import ray.train
    import tensorflow as tf

    from fervid.training.augment import augmented_epoch
    from fervid.training.trainer import build_optimizer, prepare_data, save_inference_model
    from fervid.models.mini_xception import build_mini_xception

    config: TrainConfig = loop_config["config"]
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    keras.utils.set_random_seed(config.seed)

    data = prepare_data(config)
    global_batch = config.batch_size
    local_batch = max(1, global_batch // world)
    # Every worker must run the same number of steps (they meet in all-reduces).
    steps = max(1, len(data.x_train) // (local_batch * world))
    shard = slice(rank * steps * local_batch, (rank + 1) * steps * local_batch)

    start_epoch, best_score, history = 0, -math.inf, []
    checkpoint = ray.train.get_checkpoint()
    with strategy.scope():
        if checkpoint:
            with checkpoint.as_directory() as folder:
                state = json.loads((Path(folder) / "state.json").read_text())
                model = keras.models.load_model(Path(folder) / "last.keras", compile=False)
                best_weights = keras.models.load_model(Path(folder) / "best.keras", compile=False).get_weights()
                optimizer = build_optimizer(config, steps)
                optimizer.build(model.trainable_variables)
                saved = np.load(Path(folder) / "optimizer.npz")
                for variable, key in zip(optimizer.variables, saved.files):
                    variable.assign(saved[key])
                history = state["history"]
                start_epoch, best_score = state["completed_epochs"], state["best_score"]
        else:
            model = build_mini_xception(width=config.width, dropout=config.dropout)
            best_weights = model.get_weights()
            optimizer = build_optimizer(config, steps)
            optimizer.build(model.trainable_variables)
        loss_fn = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing,
                                                       reduction=None)

    @tf.function
    def train_step(x, y):
        def replica_step(x, y):
            with tf.GradientTape() as tape:
                probs = model(x, training=True)
                per_example = loss_fn(y, probs)
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=local_batch * world)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(probs, 1), tf.argmax(y, 1)), tf.float32))
            return loss, correct

        loss, correct = strategy.run(replica_step, args=(x, y))
        return (strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
                strategy.reduce(tf.distribute.ReduceOp.SUM, correct, axis=None))

    for epoch in range(start_epoch, config.epochs):
        x_epoch, y_epoch = augmented_epoch(data.x_train[shard], data.y_train[shard], epoch,
                                           config.augment, seed=config.seed + rank,
                                           erasing=config.erasing, mixup=config.mixup)
        total_loss, total_correct = 0.0, 0.0
        for index in range(steps):
            batch = slice(index * local_batch, (index + 1) * local_batch)
            loss, correct = train_step(tf.constant(x_epoch[batch]), tf.constant(y_epoch[batch]))
            total_loss += float(loss)
            total_correct += float(correct)
        probs = model.predict(data.x_val, batch_size=512, verbose=0)
        val_loss = float(keras.losses.CategoricalCrossentropy()(data.y_val, probs))
        val_acc = float(np.mean(probs.argmax(1) == data.y_val.argmax(1)))
        row = {"epoch": epoch, "accuracy": total_correct / (steps * local_batch * world),
               "loss": total_loss / steps, "val_accuracy": val_acc, "val_loss": val_loss}
        history.append(row)
        if val_acc > best_score:
            best_score, best_weights = val_acc, model.get_weights()
        metrics = {**row, "best_val_accuracy": best_score, "completed_epochs": epoch + 1}
        with tempfile.TemporaryDirectory() as folder:
            report_checkpoint = None
            if rank == 0:  # one copy of the (identical) replicas is enough
                folder_path = Path(folder)
                model.save(folder_path / "last.keras")
                save_inference_model(model, folder_path / "best.keras", best_weights)
                np.savez(folder_path / "optimizer.npz", *[v.numpy() for v in optimizer.variables])
                (folder_path / "state.json").write_text(json.dumps({
                    "completed_epochs": epoch + 1, "best_score": best_score, "history": history}))
                report_checkpoint = ray.train.Checkpoint.from_directory(folder)
            ray.train.report(metrics, checkpoint=report_checkpoint)


def start_ray(address: str | None, num_cpus: int) -> bool:
    """Join the Ray at ``address``, or start one of this machine's own with ``num_cpus``; True when
    this call started or joined it, False when Ray was already initialised (left as it is).

    A Ray of our own (no ``address``) listens on 127.0.0.1 only, as ``fervid up``'s does: it is
    this machine's private runtime, and on Linux Ray would otherwise listen on every interface.
    "local" makes it ours even when ``ray start`` left a cluster on this machine. A cluster's own
    address (a RayJob, ``ray job submit``) is used as it is; its nodes bring their own CPUs.
    """
    import ray

    from fervid.ray_loopback import keep_loopback

    if ray.is_initialized():
        return False
    with keep_loopback():
        if not address:
            ray.init(address="local", num_cpus=num_cpus, log_to_driver=False)
            return True
        try:
            ray.init(address=address, log_to_driver=False)
        except ConnectionError as exc:
            raise FervidError(f"no Ray cluster at {address}: {str(exc).strip().splitlines()[0][:200]}") from None
    return True


def train_distributed(config: TrainConfig, address: str | None = None) -> dict:
    """Run the Ray Train job with ``config.workers`` workers and collect its results in ``config.out``."""
    from ray.train import CheckpointConfig, RunConfig, ScalingConfig
    from ray.train.tensorflow import TensorflowTrainer

    from fervid.training.plots import plot_history
    from fervid.training.trainer import check_resumable, create_run_folder

    out = config.out.resolve()
    check_regular_file(config.data, "a CSV file", FervidError)  # the workers read it; a folder is not "no such file"
    if config.teacher:  # refused here in one line, not in every worker
        from fervid.training.distil import load_teacher

        load_teacher(config.teacher)
    create_run_folder(out)
    start_ray(address, num_cpus=max(config.workers, os.cpu_count() or 1))
    # Absolute paths: the workers' working folder is not the driver's.
    absolute = config.model_copy(update={"data": config.data.resolve(), "out": out,
                                         "ferplus": config.ferplus.resolve() if config.ferplus else None,
                                         "teacher": config.teacher.resolve() if config.teacher else None})
    if not config.resume:
        shutil.rmtree(out / "ray", ignore_errors=True)
    elif (out / "ray").is_dir():
        check_resumable(out, config)
    (out / "config.json").write_text(config.to_json())
    trainer = TensorflowTrainer(
        _worker_loop, train_loop_config={"config": absolute},
        scaling_config=ScalingConfig(num_workers=config.workers, use_gpu=config.use_gpu,
                                     resources_per_worker={"CPU": 1}),
        run_config=RunConfig(name="fervid-train", storage_path=str(out / "ray"),
                             checkpoint_config=CheckpointConfig(num_to_keep=2)))
    try:
        result = trainer.fit()
    except Exception as exc:
        raise FervidError(f"distributed training failed: {str(exc).strip().splitlines()[-1][:200]}") from exc
    if result.checkpoint is None:
        raise FervidError("distributed training ended without a checkpoint")
    with result.checkpoint.as_directory() as folder:
        state = json.loads((Path(folder) / "state.json").read_text())
        shutil.copy(Path(folder) / "best.keras", out / "best.keras")
    with open(out / "history.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=HISTORY_FIELDS)
        writer.writeheader()
        writer.writerows(state["history"])
    plot_history(out / "history.csv", out / "curves.png")
    return {"completed_epochs": state["completed_epochs"], "best_score": state["best_score"],
            "monitor": "val_accuracy", "workers": config.workers,
            "best_model": str(out / "best.keras"), "history": str(out / "history.csv"),
            "curves": str(out / "curves.png")}

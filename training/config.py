"""The training recipe as one validated record, shared by ``fervid train``, the single-process
trainer and every Ray Train worker (the driver hands the validated record itself to the workers).

Validated as strictly as the service's config: unknown keys are errors, numbers must be of the
right kind (no float epochs, no booleans for numbers), finite and within their range, and every
message names the setting, as its command-line flag when the values came from ``fervid train``.
Without this a negative learning rate or a label smoothing of 5 trained for an hour and produced
nothing. The run folder is checked here too, before any data is read, so a ``--out`` that names a
file or sits where nothing can be written is refused at once and nothing is created.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fervid.errors import FervidError
from fervid.validation import first_problem

MIN_ROWS = 20
"""Fewest Training rows a run can use: a stratified validation slice is split off them."""

PathSetting = Annotated[Path, Field(strict=False)]
"""A path given as a ``Path`` or a string (strict mode would take only ``Path`` objects)."""


class TrainConfigError(FervidError):
    """A training setting is invalid; the message names the flag or key and the value."""


class TrainConfig(BaseModel):
    """Everything that determines a training run; it is written next to the results."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    data: PathSetting = Field(description="FER2013 CSV (plain or gzip)")
    out: PathSetting = Field(Path("runs/latest"), description="the run folder (created if missing)")
    ferplus: Annotated[Path | None, Field(strict=False)] = Field(
        None, description="fer2013new.csv(.gz): blend FER+ votes into the targets")
    epochs: Annotated[int, Field(ge=1, le=10_000)] = 60
    batch_size: Annotated[int, Field(ge=1, le=65_536)] = 128
    workers: Annotated[int, Field(ge=1, le=1024)] = 1
    use_gpu: bool = False
    limit: int | None = Field(None, description=f"read at most this many Training rows (at least {MIN_ROWS})")
    width: Annotated[float, Field(gt=0, le=8)] = Field(1.0, description="Mini-Xception width multiplier")
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 2e-3
    weight_decay: Annotated[float, Field(ge=0, le=1)] = 0.05
    warmup_epochs: Annotated[int, Field(ge=0, le=10_000)] = 3
    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.1
    ferplus_weight: Annotated[float, Field(ge=0, le=1)] = Field(
        0.5, description="share of the FER+ vote distribution in each target (0: FER2013 labels only)")
    augment: Annotated[float, Field(ge=0, le=3)] = Field(
        1.0, description="augmentation strength (0: flips only); beyond 3, zoom and contrast reach zero")
    erasing: Annotated[float, Field(ge=0, le=1)] = Field(
        0.0, description="probability of random erasing (a noise rectangle of 2-20% of the crop); 0: off")
    mixup: Annotated[float, Field(ge=0, le=10)] = Field(
        0.0, description="mixup's Beta(a, a) parameter (0.2 is usual); 0: off")
    teacher: Annotated[Path | None, Field(strict=False)] = Field(
        None, description="a trained .keras model (one or an ensemble) to distil: its flip-averaged "
                          "probabilities on each training image are blended into that image's target")
    teacher_weight: Annotated[float, Field(ge=0, le=1)] = Field(
        0.7, description="share of the teacher's probabilities in each target (with --teacher)")
    teacher_temperature: Annotated[float, Field(ge=0.1, le=20)] = Field(
        1.0, description="softens the teacher's probabilities: softmax(log(p) / T)")
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    validation_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.1
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 2013
    resume: bool = Field(True, description="continue an interrupted run found in out")

    @field_validator("limit")
    @classmethod
    def _enough_rows(cls, value: int | None) -> int | None:
        if value is not None and value < MIN_ROWS:
            raise ValueError(f"must be at least {MIN_ROWS} rows (a validation slice is split off)")
        return value

    @field_validator("out")
    @classmethod
    def _out_can_be_a_run_folder(cls, value: Path) -> Path:
        problem = run_folder_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @classmethod
    def parse(cls, values: Mapping[str, object], name: Callable[[str], str] = str) -> "TrainConfig":
        """Validate ``values``, or raise TrainConfigError naming the first bad setting by ``name(key)``."""
        try:
            return cls.model_validate(dict(values))
        except ValidationError as exc:
            raise TrainConfigError(describe_error(exc, name)) from None

    def to_json(self) -> str:
        """Serialise with paths as strings (for ``config.json`` beside the run)."""
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True)


def run_folder_problem(out: Path) -> str | None:
    """Why ``out`` cannot be (or become) a run folder, found without creating anything; None if it can.

    Running as root, ``os.access`` says yes to read-only places such as /proc; creating the folder
    (``trainer.create_run_folder``) still reports those in one line.
    """
    if out.exists():
        if not out.is_dir():
            return "is a file, not a folder"
        return None if os.access(out, os.W_OK | os.X_OK) else "the folder is not writable"
    for ancestor in out.absolute().parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                return f"{ancestor} is a file, not a folder"
            if not os.access(ancestor, os.W_OK | os.X_OK):
                return f"cannot create it: folder {ancestor} is not writable"
            return None
    return None


def describe_error(error: ValidationError, name: Callable[[str], str] = str) -> str:
    """One line: the first offending setting (an unknown key before the rest), its value and why."""
    first, more = first_problem(error)
    key = ".".join(str(part) for part in first["loc"])
    if first["type"] == "extra_forbidden":
        message = f"unknown key {key!r}"
    elif first["type"] == "missing":
        message = f"{name(key)} is required"
    else:
        why = first["msg"].removeprefix("Value error, ").replace("Input should be", "must be", 1)
        message = f"{name(key)} {_shown(first['input'])}: {why}"
    return message + more


def _shown(value: object) -> str:
    """A value as a user typed it: paths and numbers plain, other strings quoted, at most 80 characters."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."

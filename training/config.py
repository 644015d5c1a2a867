"""The training recipe as one typed record, shared by the single-process and Ray Train paths."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class TrainConfig:
    """Everything that determines a training run; it is written next to the results."""

    data: Path
    out: Path = Path("runs/latest")
    ferplus: Path | None = None
    epochs: int = 60
    batch_size: int = 128
    workers: int = 1
    use_gpu: bool = False
    limit: int | None = None
    width: float = 1.0
    learning_rate: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: int = 3
    label_smoothing: float = 0.1
    ferplus_weight: float = 0.5
    augment: float = 1.0
    dropout: float = 0.0
    validation_fraction: float = 0.1
    seed: int = 2013
    resume: bool = True
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        """Serialise with paths as strings (for ``config.json`` beside the run)."""
        return json.dumps({k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()},
                          indent=2, sort_keys=True)

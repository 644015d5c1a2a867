"""Accuracy, per-class recall and the confusion matrix of a classifier on labelled crops."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fervid.models.classifier import EmotionClassifier
from fervid.models.labels import EMOTIONS, NUM_CLASSES


@dataclass(frozen=True)
class EvaluationReport:
    """What ``fervid evaluate`` prints; ``confusion[i][j]`` counts true class i predicted as j.

    ``per_class`` holds ``None`` for a class without samples: its recall is undefined, and NaN is
    not valid JSON.
    """

    accuracy: float
    n: int
    per_class: dict[str, float | None]
    confusion: np.ndarray

    def to_dict(self) -> dict:
        return {"accuracy": self.accuracy, "n": self.n, "per_class": self.per_class,
                "confusion": self.confusion.tolist()}

    def format_table(self) -> str:
        """A human-readable report: accuracy, recall per class and the confusion matrix."""
        lines = [f"accuracy {self.accuracy:.4f} on {self.n} images", "", "recall per class:"]
        lines += [f"  {name:<9} {'n/a (no samples)' if recall is None else f'{recall:.4f}'}"
                  for name, recall in self.per_class.items()]
        lines += ["", "confusion (rows: true, columns: predicted):",
                  " " * 10 + "".join(f"{name[:7]:>8}" for name in EMOTIONS)]
        for name, row in zip(EMOTIONS, self.confusion):
            lines.append(f"{name:<10}" + "".join(f"{v:>8d}" for v in row))
        return "\n".join(lines)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """7x7 counts; rows are true classes, columns predicted classes."""
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def report_from_predictions(labels: np.ndarray, predicted: np.ndarray) -> EvaluationReport:
    """Build the report from true and predicted class indices."""
    confusion = confusion_matrix(labels, predicted)
    totals = confusion.sum(axis=1)
    per_class = {name: (float(confusion[i, i] / totals[i]) if totals[i] else None)
                 for i, name in enumerate(EMOTIONS)}
    return EvaluationReport(accuracy=float((labels == predicted).mean()), n=int(labels.shape[0]),
                            per_class=per_class, confusion=confusion)


def evaluate(classifier: EmotionClassifier, crops: np.ndarray, labels: np.ndarray,
             batch_size: int = 256) -> EvaluationReport:
    """Classify every crop (in batches) and compare with ``labels``."""
    predicted = np.concatenate([classifier.predict(crops[i:i + batch_size]).argmax(axis=1)
                                for i in range(0, crops.shape[0], batch_size)])
    return report_from_predictions(np.asarray(labels), predicted)

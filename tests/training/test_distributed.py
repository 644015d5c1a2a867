"""Ray Train (TensorflowTrainer, 2 CPU workers, MultiWorkerMirroredStrategy) on real rows."""
import csv

from models.classifier import EmotionClassifier
from training.config import TrainConfig
from training.distributed import train_distributed
from tests.conftest import FERPLUS_SAMPLE, SAMPLE_CSV


def test_two_workers_train_and_resume(ray_session, tmp_path):
    out = tmp_path / "dist"
    config = TrainConfig(data=SAMPLE_CSV, ferplus=FERPLUS_SAMPLE, out=out, epochs=1, workers=2,
                         batch_size=64, limit=512, width=0.5, warmup_epochs=0)
    summary = train_distributed(config)
    assert summary["completed_epochs"] == 1 and summary["workers"] == 2
    EmotionClassifier.load(out / "best.keras")
    assert (out / "curves.png").is_file()

    # Same command again with the same recipe: Ray Train resumes from its checkpoint
    # and has nothing left to do, so the history keeps exactly one epoch.
    summary = train_distributed(config)
    with open(out / "history.csv") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["0"]

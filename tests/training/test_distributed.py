"""Ray Train (TensorflowTrainer, 2 CPU workers, MultiWorkerMirroredStrategy) on real rows."""
import csv

from fervid.models.classifier import EmotionClassifier
from fervid.training.config import TrainConfig
from fervid.training.distributed import train_distributed
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


def test_train_joins_a_running_cluster_with_address(ray_session, tmp_path):
    """What a RayJob or `ray job submit` does: a second driver joins the cluster and trains there."""
    from tests.conftest import run_fervid

    address = ray_session.get_runtime_context().gcs_address
    run = run_fervid("train", "--data", SAMPLE_CSV, "--workers", "2", "--address", address, "--epochs", "1",
                     "--batch-size", "32", "--limit", "128", "--width", "0.5", "--out", tmp_path / "joined",
                     "--json", timeout=500)
    assert run.returncode == 0, run.stderr[-2000:]
    assert '"workers": 2' in run.stdout
    EmotionClassifier.load(tmp_path / "joined" / "best.keras")


def test_train_address_without_workers_is_a_one_line_error(tmp_path):
    from tests.conftest import run_fervid

    run = run_fervid("train", "--data", SAMPLE_CSV, "--address", "auto", "--out", tmp_path / "x")
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1
    assert "--address needs --workers 2" in run.stderr

"""Shared fixtures: paths to real media and data, the shipped classifier, one Ray per session."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fervid.media.samples import SAMPLE_CLIP, TWO_PEOPLE
from fervid.models.backend_env import TRAINING, configure_tensorflow

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
configure_tensorflow(TRAINING)  # the suite trains in this process, where oneDNN crashed

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
SHARED = REPO.parent / "shared" / "data"
SAMPLE_CSV = DATA / "fer2013_sample.csv.gz"
FERPLUS_SAMPLE = DATA / "fer2013new_sample.csv.gz"
OBAMA = DATA / "obama.jpg"


def run_fervid(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real ``fervid`` command line in a subprocess."""
    return subprocess.run([sys.executable, "-m", "fervid.cli.main", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def classifier():
    from fervid.models.classifier import EmotionClassifier

    return EmotionClassifier.load()


@pytest.fixture(scope="session")
def ray_session():
    """One real local Ray instance for the whole test session (it takes seconds to start)."""
    import ray

    from fervid.ray_loopback import keep_loopback
    from fervid.services.allocator import configure_allocator

    if not ray.is_initialized():
        configure_allocator()  # what `fervid up` does before it starts an embedded Ray
        # "local": never join a cluster that `ray start` left on this machine; on loopback, as
        # `fervid up`'s own: the test session's Ray is reachable from no other machine either.
        with keep_loopback():
            ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def service():
    """A real ZMQ publisher on 127.0.0.1 that tests feed with messages; closed afterwards."""
    from tests.helpers.zmq_helpers import FakeService

    fake = FakeService()
    yield fake
    fake.close()

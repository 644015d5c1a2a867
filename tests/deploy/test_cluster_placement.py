"""The shipped cluster config puts every actor where docs/deploy.md says, on a real multi-node Ray."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO, SAMPLE_CLIP
from tests.services.service_helpers import free_port


@pytest.mark.slow
def test_cluster_config_places_actors_by_node_label():
    from tests.helpers.mjpeg_server import MjpegServer

    with MjpegServer.from_video(SAMPLE_CLIP, fps=10) as camera:
        run = subprocess.run([sys.executable, "-m", "tests.deploy.placement_probe", str(free_port()),
                              str(free_port()), camera.url], cwd=REPO, capture_output=True, text=True, timeout=540)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    placed = report["placed"]
    kinds: dict[str, set] = {}
    for name, label in placed.items():
        kinds.setdefault(name.split(":")[0], set()).add(label)
    assert kinds["detector"] == {"cpu"}, placed  # Haar never on the GPU node or the head
    assert kinds["inference"] == {"gpu"}, placed
    assert sum(name.startswith("inference:") for name in placed) == 2, placed  # num_gpus 0.5 on 1 GPU
    assert sum(name.startswith("detector:") for name in placed) == 2, placed  # the CPU node's 2 CPUs
    assert placed["capture:netcam"] == "cpu", placed  # network cameras on CPU nodes
    assert placed["capture:sample"] == "head", placed  # a file is read where it is
    assert {placed["controller"], placed["publisher"], placed["metrics"]} == {"head"}, placed
    assert all(count > 3 for count in report["processed"].values()), report["processed"]

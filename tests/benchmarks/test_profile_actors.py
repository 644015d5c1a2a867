"""The py-spy summary used by benchmarks.profile_actors (py-spy itself is not run here: it needs ptrace)."""
from __future__ import annotations

from fervid.benchmarks.profile_actors import self_time


def test_self_time_counts_leaf_frames_of_collapsed_stacks():
    collapsed = "\n".join([
        "process 1;main_loop (ray/_raylet.pyx:10);detect (models/face_detector.py:69) 90",
        "process 1;main_loop (ray/_raylet.pyx:10) 8",
        "process 1;main_loop (ray/_raylet.pyx:10);crop_faces (models/preprocessing.py:40) 2",
        "garbage line without a count",
    ])
    total, top = self_time(collapsed, top=2)
    assert total == 100
    assert top == [{"function": "detect", "share": 0.9}, {"function": "main_loop", "share": 0.08}]
    assert self_time("") == (0, [])

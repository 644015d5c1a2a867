"""The capture actor's backpressure policy (its behaviour under Ray is in test_service_end_to_end)."""
from __future__ import annotations

import pytest

from fervid.services.capture import IN_FLIGHT_PER_DETECTOR, in_flight_limit


@pytest.mark.parametrize(("detectors", "streams", "expected"), [
    (2, 1, 4),   # one stream may keep both detectors busy with one frame queued behind each
    (2, 2, 2),
    (2, 3, 2),   # 4 frames over 3 streams: rounded up, so no detector idles
    (2, 4, 1),
    (2, 8, 1),   # never below one frame: every stream keeps moving
    (8, 3, 6),
    (0, 1, IN_FLIGHT_PER_DETECTOR),  # no detector known yet: as if one
])
def test_streams_share_two_frames_per_detector(detectors, streams, expected):
    assert in_flight_limit(None, detectors, streams) == expected


def test_a_configured_limit_wins():
    assert in_flight_limit(3, detectors=2, streams=8) == 3

"""Tracking in the running service: the sample clip's messages carry stable track ids and
smoothed expressions, and the metrics show that most frames were scanned in regions only.

One stream of the sample clip, unpaced and looping (every frame is processed, none dropped), on
the session's real Ray; a real ZMQ subscriber and real /metrics scrapes.
"""
from __future__ import annotations

from collections import Counter

import pytest

from fervid.models.labels import EMOTIONS
from tests.conftest import SAMPLE_CLIP
from tests.services.service_helpers import Subscriber, running_service, sample_value, scrape, stream_status

STREAM = "tracked"
CLIP_FRAMES = 275
WIDTH, HEIGHT = 640, 360


@pytest.fixture(scope="module")
def service(ray_session):
    with running_service(ray_session, [{"name": STREAM, "source": str(SAMPLE_CLIP), "loop": True, "pace": False}],
                         inference={"max_wait_ms": 5}) as info:
        yield info


@pytest.fixture(scope="module")
def messages(service):
    """At least one whole pass over the clip (275 frames) of published messages, in order."""
    subscriber = Subscriber(service["endpoint"])
    try:
        received = []
        for _ in range(12):  # up to 12 x 5 s on a loaded box
            received += subscriber.collect(5.0)
            if len(received) >= CLIP_FRAMES + 50:
                break
    finally:
        subscriber.close()
    assert len(received) >= CLIP_FRAMES, f"only {len(received)} messages"
    return received


def test_every_published_face_has_a_track_and_smoothed_probabilities(messages):
    faces = [face for message in messages for face in message.faces.to_records()]
    assert faces, "the sample clip shows faces; none were published"
    for face in faces:
        assert isinstance(face["track"], int) and face["track"] >= 1
        assert set(face["smoothed"]) == set(EMOTIONS)
        assert sum(face["smoothed"].values()) == pytest.approx(1.0, abs=1e-3)
        assert face["emotion"] == max(face["smoothed"], key=face["smoothed"].get)


def test_a_face_keeps_its_track_id_across_frames(messages):
    """The performer is in view for 129 consecutive frames (82-210; the detector loses him while
    he turns, 112-122): one track must hold most of them, and the faces of the whole pass must
    fall into few tracks."""
    appearances = Counter(int(t) for m in messages if len(m.faces) for t in m.faces.track_ids)
    assert max(appearances.values()) >= 60, f"faces per track: {sorted(appearances.values(), reverse=True)}"
    observations = sum(appearances.values())
    assert observations / len(appearances) >= 5, f"{observations} faces in {len(appearances)} tracks: fragmented"


def test_messages_stay_in_order_with_tracking(messages):
    seqs = [m.seq for m in messages]
    assert seqs == sorted(set(seqs))


def test_metrics_and_status_show_scanning_less(service, messages):
    samples = scrape(service["metrics_port"])
    processed = sample_value(samples, "fervid_frames_processed_total", stream=STREAM)
    full = sample_value(samples, "fervid_full_scans_total", stream=STREAM)
    regions = sample_value(samples, "fervid_region_scans_total", stream=STREAM)
    pixels = sample_value(samples, "fervid_scanned_pixels_total", stream=STREAM)
    assert processed >= CLIP_FRAMES
    assert regions > 0, "no region scans: every frame was a full scan"
    assert 0 < full < 0.6 * processed, f"{full} full scans for {processed} frames"
    assert pixels < 0.6 * processed * WIDTH * HEIGHT
    assert sample_value(samples, "fervid_tracks_started_total", stream=STREAM) >= 1
    assert sample_value(samples, "fervid_tracks_alive", stream=STREAM) >= 0
    assert sample_value(samples, "fervid_frames_dropped_total", stream=STREAM, stage="capture") == 0
    tracking = stream_status(service, STREAM)["tracking"]
    assert tracking["tracks_started"] >= 1 and tracking["region_scans"] > 0
    assert 0 < tracking["scanned_share"] < 0.6

"""FrameReader and BackgroundCalls: order, early ends, errors, bounded queues, threads that end."""
from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from fervid.analysis.stages import BackgroundCalls, FrameReader
from fervid.analysis.video_file import open_video
from fervid.media.samples import SAMPLE_CLIP
from tests.helpers.video_frames import read_frames

FRAMES = 40


@pytest.fixture(scope="module")
def clip_frames():
    return read_frames(SAMPLE_CLIP)[:FRAMES]


@pytest.fixture(scope="module")
def short_video(clip_frames, tmp_path_factory):
    """The clip's first 40 frames as MJPG: a video whose header says where it ends."""
    path = tmp_path_factory.mktemp("stages") / "short.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (640, 360))
    for image in clip_frames:
        writer.write(image)
    writer.release()
    return path


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "fervid-frame-reader"]


def test_reader_gives_the_frames_a_plain_loop_reads(clip_frames):
    with FrameReader(open_video(SAMPLE_CLIP), 0, FRAMES) as frames:
        got = list(frames)
    assert [index for index, _ in got] == list(range(FRAMES))
    assert all(np.array_equal(image, expected) for (_, image), expected in zip(got, clip_frames))
    assert not reader_threads()


def test_reader_skips_frames_off_every_and_starts_where_the_capture_is(clip_frames):
    cap = open_video(SAMPLE_CLIP)
    for _ in range(10):
        cap.grab()
    with FrameReader(cap, 10, 30, every=4) as frames:
        got = list(frames)
    assert [index for index, _ in got] == [12, 16, 20, 24, 28]
    assert all(np.array_equal(image, clip_frames[index]) for index, image in got)


def test_reader_marks_where_the_video_ends_early(short_video):
    for every in (1, 3):
        with FrameReader(open_video(short_video), 0, FRAMES + 20, every=every) as frames:
            got = list(frames)
        index, image = got[-1]
        assert image is None and index == FRAMES  # the first frame that could not be read or grabbed
        assert all(image is not None for _, image in got[:-1])


def test_a_consumer_that_stops_early_ends_the_reader_and_releases_the_capture():
    cap = open_video(SAMPLE_CLIP)
    with pytest.raises(RuntimeError, match="stop"):
        with FrameReader(cap, 0, 275, read_ahead=2) as frames:
            for index, _ in frames:
                if index == 3:
                    raise RuntimeError("stop here")
    assert not reader_threads()
    assert not cap.isOpened()


def test_reader_holds_at_most_read_ahead_frames():
    with FrameReader(open_video(SAMPLE_CLIP), 0, 100, read_ahead=3) as frames:
        time.sleep(0.5)  # the reader fills its queue and waits
        assert frames._queue.qsize() <= 3
        first = next(iter(frames))
    assert first[0] == 0


def test_background_calls_return_in_submission_order():
    def slow_for_even(n: int) -> int:
        time.sleep(0.02 if n % 2 == 0 else 0.0)
        return n * n

    with BackgroundCalls(slow_for_even, ahead=3) as calls:
        for n in range(10):
            calls.submit(n)
        assert calls.results() == [n * n for n in range(10)]


def test_background_calls_bound_what_waits():
    started = []
    release = threading.Event()

    def blocked(n: int) -> int:
        started.append(n)
        release.wait(5)
        return n

    with BackgroundCalls(blocked, ahead=2) as calls:
        calls.submit(0)
        calls.submit(1)
        waiter = threading.Thread(target=calls.submit, args=(2,))
        waiter.start()
        time.sleep(0.2)
        assert waiter.is_alive()  # a third submit waits for the oldest call
        release.set()
        waiter.join(5)
        assert calls.results() == [0, 1, 2]


def test_an_error_in_a_call_reaches_the_caller():
    def fail_on_three(n: int) -> int:
        if n == 3:
            raise ValueError("three")
        return n

    with pytest.raises(ValueError, match="three"):
        with BackgroundCalls(fail_on_three, ahead=1) as calls:
            for n in range(6):
                calls.submit(n)
            calls.results()


def test_ahead_must_be_positive():
    with pytest.raises(ValueError, match="ahead"):
        BackgroundCalls(lambda n: n, ahead=0)

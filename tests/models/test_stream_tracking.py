"""StreamTracking: one stream's plans, tracks and smoothed labels, driven as the service drives it."""
from __future__ import annotations

from collections import Counter

import numpy as np

from fervid.models.face_detector import DetectorParams
from fervid.models.faces import Faces
from fervid.models.scan_plan import PlanParams, ScanPlan
from fervid.models.stream_tracking import StreamTracking, TrackingParams, tracking_params_for
from fervid.models.tracker import TrackerParams

FPS = 30.0
HEIGHT, WIDTH = 360, 640
A = [100, 100, 60, 60]
B = [400, 100, 60, 60]
HAPPY = [0.02, 0.02, 0.02, 0.8, 0.05, 0.05, 0.04]
ANGRY = [0.8, 0.02, 0.02, 0.02, 0.05, 0.05, 0.04]


def blank(value: int = 60) -> np.ndarray:
    return np.full((HEIGHT, WIDTH, 3), value, np.uint8)


def faces(*boxes, row=HAPPY) -> Faces:
    if not boxes:
        return Faces.empty()
    return Faces(np.array(boxes), np.array([row] * len(boxes), np.float32))


def tracking(**plan) -> StreamTracking:
    plan.setdefault("motion", False)
    plan.setdefault("full_scan_every", 1000)
    return StreamTracking(TrackingParams(plan=PlanParams(**plan)))


def step(st: StreamTracking, frame: int, found: Faces, image: np.ndarray | None = None) -> tuple[ScanPlan, Faces]:
    """One frame without lag: its plan, then its results."""
    ts = frame / FPS
    plan = st.plan(ts, blank() if image is None else image)
    return plan, st.apply(ts, plan, found)


def test_disabled_tracking_scans_everything_and_leaves_faces_alone():
    st = StreamTracking(TrackingParams(enabled=False))
    found = faces(A)
    for frame in range(3):
        plan = st.plan(frame / FPS, blank())
        assert plan.full and plan.reason == "off"
        assert st.apply(frame / FPS, plan, found) is found
    assert found.track_ids is None and found.smoothed is None
    assert st.counts.frames == 3 and st.counts.full_scans == 3 and st.counts.tracks_started == 0
    assert st.counts.pixels_scanned == 3 * WIDTH * HEIGHT and st.tracks_alive == 0


def test_faces_get_track_ids_and_labels_from_their_smoothed_rows():
    st = tracking()
    _, first = step(st, 0, faces(A, B))
    assert first.track_ids.tolist() == [1, 2] and st.tracks_alive == 2
    # One frame later both faces look angry; the half-second average still says happy.
    plan, second = step(st, 1, faces([102, 100, 60, 60], [398, 100, 60, 60], row=ANGRY))
    assert not plan.full and plan.reason == "tracks" and len(plan) == 2
    assert second.track_ids.tolist() == [1, 2]
    assert second.emotions == ["happy", "happy"]
    assert np.argmax(second.probabilities, axis=1).tolist() == [0, 0]
    assert st.counts.tracks_started == 2 and st.counts.region_scans == 2


def test_smoothing_off_gives_the_raw_rows_as_smoothed():
    st = StreamTracking(TrackingParams(plan=PlanParams(motion=False), smoothing_half_life_s=0))
    step(st, 0, faces(A))
    _, second = step(st, 1, faces(A, row=ANGRY))
    assert second.emotions == ["angry"]
    np.testing.assert_array_equal(second.smoothed, second.probabilities)


def test_unclassified_faces_get_ids_but_no_smoothed_rows():
    st = tracking()
    _, out = step(st, 0, Faces(np.array([A])))
    assert out.track_ids.tolist() == [1] and out.smoothed is None and not out.classified


def test_periodic_full_scans_every_k_frames():
    st = tracking(full_scan_every=4)
    plans = [step(st, frame, faces(A))[0] for frame in range(12)]
    assert [i for i, p in enumerate(plans) if p.full] == [0, 4, 8]
    assert st.counts.full_scans == 3 and st.counts.region_scans == 9
    assert st.counts.pixels_scanned == 3 * WIDTH * HEIGHT + 9 * 120 * 120


def test_a_lost_track_causes_exactly_one_full_scan():
    st = tracking(full_scan_after_misses=2)
    reasons = [step(st, 0, faces(A))[0].reason]
    for frame in range(1, 21):  # the face is gone; 20 frames is less than max_age_s
        reasons.append(step(st, frame, faces())[0].reason)
    assert reasons[:4] == ["periodic", "tracks", "tracks", "track lost"]
    assert Counter(reasons) == {"periodic": 1, "track lost": 1, "tracks": 19}
    assert st.tracks_alive == 1 and st.counts.full_scans == 2


def test_a_lost_track_found_by_its_full_scan_continues_with_its_id():
    st = tracking(full_scan_after_misses=1)
    step(st, 0, faces(A))
    plan, out = step(st, 1, faces())  # its region was scanned and it was not there
    assert plan.regions.tolist() == [[70, 70, 120, 120]]
    plan, out = step(st, 2, faces([104, 104, 60, 60]))
    assert plan.full and plan.reason == "track lost" and out.track_ids.tolist() == [1]
    plan, out = step(st, 3, faces([106, 104, 60, 60]))
    assert not plan.full and plan.reason == "tracks" and out.track_ids.tolist() == [1]


def test_a_track_born_in_a_frame_whose_successor_was_planned_already_is_not_missed_there():
    """The service plans frame N+1 before frame N's results are in: a face first found in frame N
    is not in N+1's plan, and N+1's region scans (which did not look there) must not count a miss."""
    st = tracking(full_scan_every=5, full_scan_after_misses=1)
    for frame in range(5):
        step(st, frame, faces(A))
    plan5 = st.plan(5 / FPS, blank())
    assert plan5.full and plan5.reason == "periodic"
    plan6 = st.plan(6 / FPS, blank())  # planned before frame 5's results: only A's region
    assert plan6.regions.tolist() == [[70, 70, 120, 120]]
    out5 = st.apply(5 / FPS, plan5, faces(A, B))
    assert out5.track_ids.tolist() == [1, 2]
    out6 = st.apply(6 / FPS, plan6, faces(A))
    assert out6.track_ids.tolist() == [1]
    plan7 = st.plan(7 / FPS, blank())
    assert not plan7.full and plan7.reason == "tracks" and len(plan7) == 2


def test_a_covering_scan_that_does_not_find_a_new_track_misses_it():
    """The counterpart of the test above: had frame 6's scan looked at B, B would be lost."""
    st = tracking(full_scan_every=5, full_scan_after_misses=1)
    for frame in range(5):
        step(st, frame, faces(A))
    plan5 = st.plan(5 / FPS, blank())
    st.plan(6 / FPS, blank())
    st.apply(5 / FPS, plan5, faces(A, B))
    st.apply(6 / FPS, ScanPlan.full_scan("periodic"), faces(A))
    assert st.plan(7 / FPS, blank()).reason == "track lost"


def test_a_large_change_of_the_picture_causes_a_full_scan():
    st = tracking(motion=True, motion_full_scan_share=0.25)
    assert step(st, 0, faces(A), blank(60))[0].reason == "periodic"
    assert step(st, 1, faces(A), blank(60))[0].reason == "tracks"
    plan, _ = step(st, 2, faces(A), blank(230))
    assert plan.full and plan.reason == "motion"


def test_motion_outside_the_tracks_adds_a_region_where_a_new_face_is_found():
    st = tracking(motion=True)
    step(st, 0, faces(A), blank())
    step(st, 1, faces(A), blank())
    image = blank()
    image[200:280, 400:480] = 255
    plan, out = step(st, 2, faces(A, [410, 210, 60, 60]), image)
    assert not plan.full and plan.reason == "motion" and len(plan) == 2
    region = plan.regions[np.argmax(plan.regions[:, 0])]
    assert region[0] <= 400 and region[1] <= 200 and region[0] + region[2] >= 480 and region[1] + region[3] >= 280
    assert out.track_ids.tolist() == [1, 2] and st.counts.tracks_started == 2


def test_regions_follow_a_moving_face_even_two_frames_ahead_of_its_results():
    """In the service a frame is planned while the frames before it are still being detected: the
    region must be where the face will be, moved on by its velocity from its last result."""
    st = tracking(full_scan_every=1000)
    speed = 12  # px per frame, to the right
    plans = {}
    for frame in range(12):
        plans[frame] = st.plan(frame / FPS, blank())
        if frame >= 2:  # results arrive two frames late
            done = frame - 2
            st.apply(done / FPS, plans[done], faces([100 + speed * done, 100, 60, 60]))
    for frame in range(6, 12):
        (x, y, w, h), = plans[frame].regions.tolist()
        assert plans[frame].reason == "tracks"
        # The region is the face's box at that frame grown by half its size on every side.
        assert abs(x + w / 2 - (130 + speed * frame)) <= 3 and (w, h) == (120, 120), (frame, x)


def test_an_ended_track_is_counted_and_its_average_forgotten():
    st = StreamTracking(TrackingParams(plan=PlanParams(motion=False, full_scan_every=1),
                                       tracker=TrackerParams(max_age_s=0.2)))
    step(st, 0, faces(A))
    for frame in range(1, 10):
        step(st, frame, faces())
    assert st.counts.tracks_ended == 1 and st.tracks_alive == 0
    assert len(st._smoother) == 0  # a stream that runs for days sees thousands of tracks end
    _, back = step(st, 10, faces(A, row=ANGRY))
    assert back.track_ids.tolist() == [2] and back.emotions == ["angry"]


def test_scanned_share_is_the_planned_pixels_over_the_frames_pixels():
    """Frames of two sizes: the share weighs each frame by its own pixels."""
    st = StreamTracking(TrackingParams(enabled=False))
    assert st.counts.scanned_share == 1.0  # no frame yet
    for ts, shape in ((0.0, (360, 640, 3)), (0.1, (720, 1280, 3))):
        st.plan(ts, np.zeros(shape, np.uint8))
    assert st.counts.frame_pixels == 640 * 360 + 1280 * 720 == st.counts.pixels_scanned
    assert st.counts.scanned_share == 1.0
    st.counts.pixels_scanned = st.counts.frame_pixels // 4
    assert st.counts.scanned_share == 0.25


def test_tracking_frames_first_and_smoothing_them_later_equals_apply():
    """fervid analyze tracks each frame when detected and smooths a batch of frames later: the ids
    and smoothed rows must be the ones ``apply`` gives frame by frame."""
    script = [faces(A), faces(A, B, row=ANGRY), faces(B), faces(), faces(A, row=ANGRY)] * 3
    together, apart = tracking(), tracking()
    expected = [step(together, frame, found)[1] for frame, found in enumerate(script)]
    pending = []
    for frame, found in enumerate(script):
        plan = apart.plan(frame / FPS, blank())
        pending.append((apart.track(frame / FPS, plan, found.boxes), found))
    for (tracked, found), want in zip(pending, expected):
        assert tracked.ids.tolist() == want.track_ids.tolist()
        np.testing.assert_allclose(apart.smooth(tracked, found.probabilities), want.smoothed, atol=1e-6)
    assert apart.counts == together.counts


def test_an_in_process_reader_plans_with_its_detectors_smallest_face():
    params = tracking_params_for(DetectorParams(min_size=50))
    assert params.enabled and params.plan.min_size == 50


def test_carried_faces_keep_their_track_and_do_not_refresh_it():
    """With region scans every third frame, the frames between carry the face: the detector hands the
    plan's box back, it keeps its id and is smoothed, and the tracker sees no new observation."""
    st = tracking(region_scan_every=3)
    _, first = step(st, 0, faces(A))  # the first full scan finds the face
    assert first.track_ids.tolist() == [1]
    reasons = []
    for frame in range(1, 7):
        plan = st.plan(frame / FPS, blank())
        reasons.append(plan.reason)
        found = faces(*plan.carried.tolist()) if plan.reason == "carry" else faces(A)
        out = st.apply(frame / FPS, plan, found)
        assert out.track_ids.tolist() == [1] and out.emotions == ["happy"]
        if plan.reason == "carry":
            assert st._tracker.tracks[0].last_seen < frame / FPS
    assert reasons == ["carry", "carry", "tracks", "carry", "carry", "tracks"]
    assert st.counts.boxes_carried == 4 and st.counts.region_scans == 2 and st.counts.tracks_started == 1


def test_a_face_found_by_a_motion_region_beside_a_carried_one_starts_its_own_track():
    st = StreamTracking(TrackingParams(plan=PlanParams(motion=True, full_scan_every=1000, region_scan_every=2,
                                                       min_size=30)))
    still = blank()
    step(st, 0, faces(A), still)
    entering = still.copy()
    entering[100:160, 400:460] = 220  # something appears where B is
    plan = st.plan(1 / FPS, entering)
    assert plan.reason == "motion" and plan.carried_ids.tolist() == [1]
    out = st.apply(1 / FPS, plan, faces(B, *plan.carried.tolist()))
    assert out.track_ids.tolist() == [2, 1] and st.counts.tracks_started == 2

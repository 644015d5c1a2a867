"""ScanPlanner: full scans when they are needed, regions around tracks and motion otherwise."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fervid.models.motion import Motion
from fervid.models.scan_plan import PlanParams, ScanPlan, ScanPlanner, grow, merge_overlapping

WIDTH, HEIGHT = 640, 360
TRACK = np.array([[100.0, 100.0, 60.0, 60.0]])
IDS = np.array([1])


def planner(**kwargs) -> ScanPlanner:
    kwargs.setdefault("full_scan_every", 1000)
    return ScanPlanner(PlanParams(**kwargs))


def after_first(p: ScanPlanner) -> ScanPlanner:
    """The planner once its first (periodic) full scan is behind it."""
    assert p.plan(WIDTH, HEIGHT, TRACK, IDS).reason == "periodic"
    return p


def overlaps(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3])


def contains(outer: np.ndarray, inner: np.ndarray) -> bool:
    return bool(outer[0] <= inner[0] and outer[1] <= inner[1] and inner[0] + inner[2] <= outer[0] + outer[2]
                and inner[1] + inner[3] <= outer[1] + outer[3])


@pytest.mark.parametrize("kwargs", [{"full_scan_every": 0}, {"region_margin": -0.1}, {"size_ratio": 1.0},
                                    {"full_scan_after_misses": 0}, {"region_face_px": 20}, {"region_scan_every": 0},
                                    {"motion_full_scan_share": 0}, {"motion_full_scan_share": 1.5}])
def test_rejects_invalid_parameters(kwargs):
    with pytest.raises(ValueError):
        PlanParams(**kwargs)


def test_full_scan_plan_value():
    plan = ScanPlan.full_scan("periodic")
    assert plan.full and plan.areas is None and len(plan) == 0 and plan.reason == "periodic"
    assert plan.pixels(WIDTH, HEIGHT) == WIDTH * HEIGHT


@pytest.mark.parametrize("every", [1, 3, 10])
def test_periodic_full_scans_every_k_frames(every):
    p = planner(full_scan_every=every, motion=False)
    plans = [p.plan(WIDTH, HEIGHT, TRACK, IDS) for _ in range(3 * every + 1)]
    assert [i for i, plan in enumerate(plans) if plan.full] == [0, every, 2 * every, 3 * every]
    assert all(plan.reason == "periodic" for plan in plans if plan.full)
    assert all(plan.reason == "tracks" for plan in plans if not plan.full)


def test_without_tracks_and_motion_every_frame_is_a_full_scan():
    p = after_first(planner(motion=False))
    for _ in range(3):
        plan = p.plan(WIDTH, HEIGHT, np.zeros((0, 4)), np.zeros(0, np.int64))
        assert plan.full and plan.reason == "no tracks"


def test_with_motion_on_and_nothing_moving_nothing_is_scanned_between_full_scans():
    p = after_first(planner(motion=True))
    plan = p.plan(WIDTH, HEIGHT, np.zeros((0, 4)), np.zeros(0, np.int64), motion=Motion(np.zeros((0, 4)), 0.0))
    assert not plan.full and len(plan) == 0 and plan.pixels(WIDTH, HEIGHT) == 0 and plan.areas.shape == (0, 4)


def test_a_region_around_a_track_is_its_box_grown_by_the_margin_for_faces_of_its_size():
    p = after_first(planner(motion=False, region_margin=0.5, size_ratio=1.5, region_face_px=48))
    plan = p.plan(WIDTH, HEIGHT, TRACK, IDS)
    assert not plan.full and plan.reason == "tracks" and plan.face_px == 48
    assert plan.regions.tolist() == [[70, 70, 120, 120]]
    assert plan.min_sizes.tolist() == [40] and plan.max_sizes.tolist() == [90]
    assert plan.areas is plan.regions and plan.pixels(WIDTH, HEIGHT) == 120 * 120


def test_regions_are_clipped_to_the_frame():
    grown = grow(np.array([[-10.0, 320.0, 60.0, 60.0]]), 0.5, WIDTH, HEIGHT)
    np.testing.assert_allclose(grown, [[0, 290, 80, 70]])


def test_a_lost_track_causes_exactly_one_full_scan():
    p = after_first(planner(motion=False))
    reasons = [p.plan(WIDTH, HEIGHT, TRACK, IDS, lost).reason
               for lost in [set(), {1}, {1}, {1}, {1}, set()]]
    assert reasons == ["tracks", "track lost", "tracks", "tracks", "tracks", "tracks"]


def test_a_second_lost_track_causes_its_own_full_scan():
    p = after_first(planner(motion=False))
    two = np.array([[100.0, 100.0, 60.0, 60.0], [400.0, 100.0, 60.0, 60.0]])
    reasons = [p.plan(WIDTH, HEIGHT, two, np.array([1, 2]), lost).reason
               for lost in [{1}, {1}, {1, 2}, {1, 2}]]
    assert reasons == ["track lost", "tracks", "track lost", "tracks"]


def test_a_track_that_ends_is_forgotten_so_its_id_cannot_block_a_new_loss():
    p = after_first(planner(motion=False))
    assert p.plan(WIDTH, HEIGHT, TRACK, IDS, {1}).reason == "track lost"
    p.plan(WIDTH, HEIGHT, np.zeros((0, 4)), np.zeros(0, np.int64))  # track 1 ended
    assert p.plan(WIDTH, HEIGHT, TRACK, IDS, {1}).reason == "track lost"


def test_a_track_found_again_and_lost_again_causes_another_full_scan():
    p = after_first(planner(motion=False))
    reasons = [p.plan(WIDTH, HEIGHT, TRACK, IDS, lost).reason
               for lost in [{1}, set(), set(), {1}]]
    assert reasons == ["track lost", "tracks", "tracks", "track lost"]


def test_motion_over_the_threshold_share_causes_a_full_scan():
    p = after_first(planner(motion=True, motion_full_scan_share=0.25))
    somewhere = np.array([[300, 100, 200, 200]], np.int32)
    assert p.plan(WIDTH, HEIGHT, TRACK, IDS, motion=Motion(somewhere, 0.24)).reason == "motion"
    plan = p.plan(WIDTH, HEIGHT, TRACK, IDS, motion=Motion(somewhere, 0.25))
    assert plan.full and plan.reason == "motion"
    below = p.plan(WIDTH, HEIGHT, TRACK, IDS, motion=Motion(np.zeros((0, 4), np.int32), 0.24))
    assert not below.full and below.reason == "tracks"


def test_motion_outside_the_tracks_adds_a_region_for_any_face_size():
    p = after_first(planner(motion=True, min_size=30))
    moved = np.array([[400, 200, 80, 80]], np.int32)
    plan = p.plan(WIDTH, HEIGHT, TRACK, IDS, motion=Motion(moved, 0.03))
    assert not plan.full and plan.reason == "motion"
    assert sorted(map(tuple, plan.regions.tolist())) == [(70, 70, 120, 120), (400, 200, 80, 80)]
    by_region = {tuple(r): (lo, hi) for r, lo, hi in zip(plan.regions.tolist(), plan.min_sizes, plan.max_sizes)}
    assert by_region[(400, 200, 80, 80)] == (30, 0)  # 0: no upper limit


def test_motion_of_a_tracked_face_adds_nothing():
    p = after_first(planner(motion=True))
    inside = np.array([[90, 90, 60, 60]], np.int32)  # mostly within the track's region
    plan = p.plan(WIDTH, HEIGHT, TRACK, IDS, motion=Motion(inside, 0.01))
    assert plan.reason == "tracks" and plan.regions.tolist() == [[70, 70, 120, 120]]


def test_motion_smaller_than_the_smallest_face_adds_nothing():
    p = after_first(planner(motion=True, min_size=30))
    plan = p.plan(WIDTH, HEIGHT, TRACK, IDS, motion=Motion(np.array([[400, 200, 20, 20]], np.int32), 0.001))
    assert plan.regions.tolist() == [[70, 70, 120, 120]]


def test_overlapping_track_regions_merge_into_one_with_the_widest_size_range():
    p = after_first(planner(motion=False))
    near = np.array([[100.0, 100.0, 60.0, 60.0], [150.0, 110.0, 90.0, 90.0]])
    plan = p.plan(WIDTH, HEIGHT, near, np.array([1, 2]))
    assert plan.regions.tolist() == [[70, 65, 215, 180]]
    assert plan.min_sizes.tolist() == [40] and plan.max_sizes.tolist() == [135]


def test_merging_chains_and_an_unbounded_range_stays_unbounded():
    regions = np.array([[0, 0, 10, 10], [100, 0, 10, 10], [5, 5, 100, 2]])  # the third joins the first two
    boxes, lo, hi = merge_overlapping(regions, np.array([5, 3, 8]), np.array([20, 0, 30]))
    assert boxes.tolist() == [[0, 0, 110, 10]] and lo.tolist() == [3] and hi.tolist() == [0]
    empty = merge_overlapping(np.zeros((0, 4)), np.zeros(0), np.zeros(0))
    assert [a.shape for a in empty] == [(0, 4), (0,), (0,)]


def test_regions_that_only_touch_or_share_a_column_stay_apart():
    regions = np.array([[0, 0, 10, 10], [10, 0, 10, 10], [0, 20, 10, 10]])
    boxes, lo, hi = merge_overlapping(regions, np.array([1, 2, 3]), np.array([4, 5, 6]))
    assert boxes.tolist() == regions.tolist() and lo.tolist() == [1, 2, 3] and hi.tolist() == [4, 5, 6]


def integer_regions():
    one = st.tuples(st.integers(0, 600), st.integers(0, 340), st.integers(1, 200), st.integers(1, 200),
                    st.integers(1, 100), st.integers(0, 300))
    return st.lists(one, min_size=0, max_size=12)


@settings(max_examples=300, deadline=None)
@given(integer_regions())
def test_merged_regions_never_overlap_and_cover_every_input(items):
    regions = np.array([i[:4] for i in items], np.float64).reshape(-1, 4)
    lo_in = np.array([i[4] for i in items], np.int64)
    hi_in = np.array([i[5] for i in items], np.int64)
    boxes, lo, hi = merge_overlapping(regions, lo_in, hi_in)
    assert boxes.dtype == np.int32 and len(boxes) == len(lo) == len(hi) <= len(regions)
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not overlaps(boxes[i], boxes[j]), (boxes[i], boxes[j])
    for region, a, b in zip(regions, lo_in, hi_in):
        home = [k for k in range(len(boxes)) if contains(boxes[k], region)]
        assert home, region
        k = home[0]
        assert lo[k] <= a and (hi[k] == 0 or (b != 0 and hi[k] >= b))  # the face sizes searched still include it


def test_merged_float_regions_never_overlap():
    boxes, _, _ = merge_overlapping(np.array([[1.5, 0, 9.5, 10], [11.2, 0, 5, 10]]),
                                    np.array([1, 1]), np.array([0, 0]))
    assert not overlaps(boxes[0], boxes[1]), boxes.tolist()


FRESH = np.array([True])


@pytest.mark.parametrize("every", [2, 3])
def test_fresh_tracks_are_carried_between_region_scans(every):
    p = after_first(planner(motion=False, region_scan_every=every))
    plans = [p.plan(WIDTH, HEIGHT, TRACK, IDS, fresh=FRESH) for _ in range(3 * every)]
    scanned = [i for i, plan in enumerate(plans) if plan.reason == "tracks"]
    assert scanned == [every - 1, 2 * every - 1, 3 * every - 1]
    for i, plan in enumerate(plans):
        if i in scanned:
            assert len(plan) == 1 and len(plan.carried) == 0
        else:
            assert plan.reason == "carry" and not plan.full and len(plan) == 0 and plan.pixels(WIDTH, HEIGHT) == 0
            assert plan.carried.tolist() == TRACK.astype(int).tolist() and plan.carried.dtype == np.int32
            assert plan.carried_ids.tolist() == IDS.tolist()


def test_a_track_its_last_scan_missed_is_scanned_in_every_frame():
    p = after_first(planner(motion=False, region_scan_every=3))
    for _ in range(4):
        plan = p.plan(WIDTH, HEIGHT, TRACK, IDS, fresh=np.array([False]))
        assert plan.reason == "tracks" and len(plan) == 1 and len(plan.carried) == 0


def test_one_track_is_carried_while_a_missed_one_is_scanned():
    tracks = np.array([[100.0, 100.0, 60.0, 60.0], [400.0, 100.0, 60.0, 60.0]])
    p = after_first(planner(motion=False, region_scan_every=2))
    plan = p.plan(WIDTH, HEIGHT, tracks, np.array([1, 2]), fresh=np.array([True, False]))
    assert plan.reason == "tracks" and plan.carried_ids.tolist() == [1]
    (x, y, w, h), = plan.regions.tolist()
    assert x <= 400 <= x + w  # the region is around track 2, the one to find again


def test_without_freshness_nothing_is_carried():
    p = after_first(planner(motion=False, region_scan_every=5))
    assert all(len(p.plan(WIDTH, HEIGHT, TRACK, IDS).carried) == 0 for _ in range(6))


def test_motion_outside_the_tracks_is_scanned_on_a_carry_frame_and_motion_on_the_track_is_not():
    p = after_first(planner(motion=True, region_scan_every=2))
    near = Motion(np.array([[110.0, 110.0, 40.0, 40.0]]), 0.01)
    plan = p.plan(WIDTH, HEIGHT, TRACK, IDS, motion=near, fresh=FRESH)
    assert plan.reason == "carry" and len(plan) == 0
    p.plan(WIDTH, HEIGHT, TRACK, IDS, motion=near, fresh=FRESH)  # the region scan
    far = Motion(np.array([[450.0, 200.0, 80.0, 80.0]]), 0.02)
    plan = p.plan(WIDTH, HEIGHT, TRACK, IDS, motion=far, fresh=FRESH)
    assert plan.reason == "motion" and plan.regions.tolist() == [[450, 200, 80, 80]]
    assert plan.carried_ids.tolist() == [1]


def test_carried_boxes_stay_inside_the_frame():
    p = after_first(planner(motion=False, region_scan_every=2))
    edge = np.array([[WIDTH - 20.4, -10.6, 60.0, 60.0]])
    plan = p.plan(WIDTH, HEIGHT, edge, IDS, fresh=FRESH)
    (x, y, w, h), = plan.carried.tolist()
    assert (x, y) == (WIDTH - 20, 0) and x + w == WIDTH and y + h == 49


@pytest.mark.parametrize("scan_lost", [True, False])
def test_a_lost_track_keeps_its_region_only_if_scan_lost_tracks(scan_lost):
    p = after_first(planner(motion=False, scan_lost_tracks=scan_lost))
    assert p.plan(WIDTH, HEIGHT, TRACK, IDS, lost={1}).reason == "track lost"
    plan = p.plan(WIDTH, HEIGHT, TRACK, IDS, lost={1})
    assert not plan.full and len(plan) == (1 if scan_lost else 0)
    # Found again, then lost again: a new loss, a new full scan, whatever the setting.
    assert len(p.plan(WIDTH, HEIGHT, TRACK, IDS).regions) == 1
    assert p.plan(WIDTH, HEIGHT, TRACK, IDS, lost={1}).reason == "track lost"


CLOSE_UP = np.array([[200.0, 60.0, 220.0, 220.0]])
"""A face of 220 px: its region (margin 0.5) spans 440 x 360 px, 69% of the frame."""


@pytest.mark.parametrize("face_px", [0, 36])
def test_regions_over_the_area_share_make_a_full_scan_shrunk_or_not(face_px):
    """Judged by their area at full resolution: shrinking a close-up's region to 36 px faces would
    cost less, but in benchmarks.tracking's fourth pass it lost faces the full scan finds
    (docs/performance.md)."""
    p = after_first(planner(motion=False, region_face_px=face_px, full_scan_area_share=0.5))
    plan = p.plan(WIDTH, HEIGHT, CLOSE_UP, IDS)
    assert plan.full and plan.reason == "large regions"
    small = p.plan(WIDTH, HEIGHT, TRACK, IDS)
    assert not small.full and small.reason == "tracks"

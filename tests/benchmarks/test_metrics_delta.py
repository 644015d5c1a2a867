"""Histogram quantiles and counter differences, checked against answers worked out by hand."""
from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from fervid.benchmarks import metrics_delta as md


def test_quantile_interpolates_inside_the_bucket_like_promql():
    # 10 observations: 4 in (0, 0.1], 4 in (0.1, 0.2], 2 in (0.2, 0.5]
    buckets = [(0.1, 4.0), (0.2, 8.0), (0.5, 10.0), (math.inf, 10.0)]
    assert md.histogram_quantile(0.5, buckets) == pytest.approx(0.125)  # rank 5: 1/4 into (0.1, 0.2]
    assert md.histogram_quantile(0.2, buckets) == pytest.approx(0.05)
    assert md.histogram_quantile(0.9, buckets) == pytest.approx(0.35)  # rank 9: half of (0.2, 0.5]


def test_quantile_in_the_inf_bucket_is_the_largest_finite_bound_and_empty_is_none():
    assert md.histogram_quantile(0.99, [(0.1, 1.0), (math.inf, 10.0)]) == 0.1
    assert md.histogram_quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]) is None
    assert md.histogram_quantile(0.5, []) is None


def test_window_differences_of_real_prometheus_client_output():
    registry = CollectorRegistry()
    frames = Counter("fervid_frames_processed_total", "frames", ["stream"], registry=registry)
    latency = Histogram("fervid_latency_seconds", "latency", ["stream"], buckets=(0.05, 0.1), registry=registry)
    frames.labels(stream="a").inc(5)
    latency.labels(stream="a").observe(0.2)  # before the window: must not count
    before = md.parse_samples(generate_latest(registry).decode())
    frames.labels(stream="a").inc(3)
    frames.labels(stream="b").inc(2)  # a series that appears during the window counts from zero
    for value in (0.01, 0.02, 0.07, 0.08):
        latency.labels(stream="a").observe(value)
    window = md.delta(before, md.parse_samples(generate_latest(registry).decode()))
    assert md.total(window, "fervid_frames_processed_total") == 5
    assert md.total(window, "fervid_frames_processed_total", stream="a") == 3
    assert md.by_label(window, "fervid_frames_processed_total", "stream") == {"a": 3, "b": 2}
    buckets = md.histogram_buckets(window, "fervid_latency_seconds", stream="a")
    assert buckets == [(0.05, 2.0), (0.1, 4.0), (math.inf, 4.0)]
    assert md.histogram_quantile(0.5, buckets) == pytest.approx(0.05)

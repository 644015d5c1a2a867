"""Reading the service's Prometheus endpoint the way a dashboard does: differences and quantiles.

A benchmark scrapes ``/metrics`` at the start and the end of its measuring window; counters
and histogram buckets are subtracted, so the warm-up never counts, and latency quantiles are
interpolated within histogram buckets exactly as PromQL's ``histogram_quantile`` does.
"""
from __future__ import annotations

import math
import urllib.request
from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_samples(text: str) -> Samples:
    """Prometheus text format as ``{(sample name, sorted labels): value}``."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def scrape(url: str, timeout_s: float = 10.0) -> Samples:
    """One HTTP scrape, parsed by ``parse_samples``."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return parse_samples(response.read().decode())


def delta(before: Samples, after: Samples) -> Samples:
    """``after - before`` for every sample (a series absent before counts from zero)."""
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


def total(samples: Samples, name: str, **match: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``match``."""
    return sum(value for (sample, labels), value in samples.items()
               if sample == name and all(dict(labels).get(k) == v for k, v in match.items()))


def by_label(samples: Samples, name: str, label: str, **match: str) -> dict[str, float]:
    """Sum of ``name`` per value of ``label`` (e.g. dropped frames per stage)."""
    out: dict[str, float] = defaultdict(float)
    for (sample, labels), value in samples.items():
        labels_dict = dict(labels)
        if sample == name and label in labels_dict and all(labels_dict.get(k) == v for k, v in match.items()):
            out[labels_dict[label]] += value
    return dict(out)


def histogram_buckets(samples: Samples, name: str, **match: str) -> list[tuple[float, float]]:
    """Cumulative ``(le, count)`` pairs of histogram ``name``, summed over series matching ``match``."""
    counts: dict[float, float] = defaultdict(float)
    for (sample, labels), value in samples.items():
        labels_dict = dict(labels)
        if sample != f"{name}_bucket" or not all(labels_dict.get(k) == v for k, v in match.items()):
            continue
        counts[float(labels_dict["le"])] += value
    return sorted(counts.items())


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """PromQL's ``histogram_quantile``: linear interpolation inside the bucket holding rank q*N.

    Returns ``None`` without observations; an answer in the ``+Inf`` bucket is the largest
    finite bound (what Prometheus does too), so read it as "at least".
    """
    if not buckets or buckets[-1][1] <= 0:
        return None
    observations = buckets[-1][1]
    rank = q * observations
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return buckets[-1][0]

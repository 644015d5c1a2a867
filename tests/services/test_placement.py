"""Label selectors and actor sizing on cluster shapes a test can describe (no Ray needed)."""
from __future__ import annotations

import pytest

from fervid.services.config import parse_config
from fervid.services.placement import NodeInfo, PlacementError, Plan, check_selector, plan, selector_matches

CPU = {"fervid.io/node": "cpu"}
GPU = {"fervid.io/node": "gpu"}


def mixed_cluster() -> list[NodeInfo]:
    """A head without CPUs for work, two 8-CPU workers and one GPU worker with 4 CPUs."""
    return [NodeInfo("head", {"fervid.io/node": "head"}, 0, 0),
            NodeInfo("cpu-a", dict(CPU), 8, 0), NodeInfo("cpu-b", dict(CPU), 8, 0),
            NodeInfo("gpu-a", dict(GPU), 4, 1)]


def sizes(nodes, **overrides):
    settings = dict(inference_selector=None, inference_actors=None, gpus_per_inference=None, inference_cpus=0.0,
                    detector_selector=None, detector_pool=None, detector_cpus=1.0,
                    capture_selector=None, captures=0, capture_cpus=0.0)
    settings.update(overrides)
    return plan(nodes, **settings)


@pytest.mark.parametrize(("selector", "labels", "expected"), [
    ({"fervid.io/node": "cpu"}, {"fervid.io/node": "cpu"}, True),
    ({"fervid.io/node": "cpu"}, {"fervid.io/node": "gpu"}, False),
    ({"fervid.io/node": "cpu"}, {}, False),
    ({"fervid.io/node": "!gpu"}, {"fervid.io/node": "cpu"}, True),
    ({"fervid.io/node": "!gpu"}, {}, True),  # Ray's semantics: a node without the label is "not gpu"
    ({"fervid.io/node": "!gpu"}, {"fervid.io/node": "gpu"}, False),
    ({"zone": "in(a, b)"}, {"zone": "b"}, True),
    ({"zone": "!in(a,b)"}, {"zone": "b"}, False),
    ({"zone": "a", "fervid.io/node": "cpu"}, {"zone": "a", "fervid.io/node": "cpu"}, True),
    ({"zone": "a", "fervid.io/node": "cpu"}, {"zone": "a"}, False),
    (None, {}, True),
])
def test_selector_matches_like_ray(selector, labels, expected):
    assert selector_matches(selector, labels) is expected


def test_selectors_ray_accepts_are_accepted():
    from ray._private.label_utils import validate_label_key, validate_label_selector_value

    selector = {"fervid.io/node": "cpu", "Zone.Example/rack": "!in(a, b)", "tier": "!x", "pool": "in(p1,p2)"}
    assert all(validate_label_key(k) is None and validate_label_selector_value(v) is None for k, v in selector.items())
    assert check_selector(selector) == selector


@pytest.mark.parametrize("selector", [{"bad key!": "x"}, {"fervid.io/node": ""}, {"fervid.io/node": "in()"},
                                      {"fervid.io/node": "a b"}, {"fervid.io/node": "in(a,  b)"},
                                      {"no spaces/node": "x"}])
def test_invalid_selectors_are_refused_with_the_key_named(selector):
    with pytest.raises(ValueError, match="label_selector"):
        check_selector(selector)


def test_config_refuses_a_bad_selector_in_one_line():
    from fervid.services.config import ConfigError

    with pytest.raises(ConfigError) as raised:
        parse_config({"detector": {"label_selector": {"fervid.io/node": "not valid"}}})
    assert "detector.label_selector" in str(raised.value) and "\n" not in str(raised.value)


def test_single_node_defaults_use_every_cpu_and_one_cpu_inference_actor():
    assert sizes([NodeInfo("n", {}, 2, 0)]) == Plan(1, 0.0, 2)


def test_gpu_nodes_get_one_inference_actor_per_gpu_and_fractions_share_a_gpu():
    cluster = mixed_cluster() + [NodeInfo("gpu-b", dict(GPU), 4, 2)]
    whole = sizes(cluster, inference_selector=GPU)
    assert (whole.inference_actors, whole.gpus_per_inference) == (3, 1.0)
    halves = sizes(cluster, inference_selector=GPU, gpus_per_inference=0.5)
    assert (halves.inference_actors, halves.gpus_per_inference) == (6, 0.5)


def test_detectors_count_only_the_cpus_of_the_nodes_they_may_use():
    assert sizes(mixed_cluster()).detectors == 20  # no selector: the GPU node's CPUs too
    assert sizes(mixed_cluster(), detector_selector=CPU).detectors == 16
    assert sizes(mixed_cluster(), detector_selector={"fervid.io/node": "!in(gpu,head)"}).detectors == 16
    assert sizes(mixed_cluster(), detector_selector=CPU, detector_cpus=2).detectors == 8


def test_reservations_only_count_where_they_share_nodes_with_detectors():
    # Inference CPUs are reserved on GPU nodes, which detectors do not use here: nothing to subtract.
    assert sizes(mixed_cluster(), detector_selector=CPU, inference_selector=GPU, inference_cpus=2).detectors == 16
    # Captures of network cameras on the CPU nodes take their share.
    assert sizes(mixed_cluster(), detector_selector=CPU, capture_selector=CPU, captures=4,
                 capture_cpus=1).detectors == 12


def test_an_explicit_pool_size_wins():
    assert sizes(mixed_cluster(), detector_selector=CPU, detector_pool=3).detectors == 3


def test_a_selector_no_node_matches_is_a_clear_error():
    with pytest.raises(PlacementError, match="no node of the cluster matches detector.label_selector"):
        sizes(mixed_cluster(), detector_selector={"fervid.io/node": "arm"})
    with pytest.raises(PlacementError, match="inference.label_selector"):
        sizes(mixed_cluster(), inference_selector={"fervid.io/node": "tpu"})


def test_asking_for_more_gpus_than_the_matching_nodes_have_is_a_clear_error():
    with pytest.raises(PlacementError, match="inference.num_gpus is 2 but"):
        sizes(mixed_cluster(), inference_selector=GPU, gpus_per_inference=2)


def test_nodes_are_read_from_ray_nodes_entries():
    from fervid.services.placement import live_nodes

    entries = [{"NodeID": "a", "Alive": True, "Labels": {"fervid.io/node": "cpu"}, "Resources": {"CPU": 4.0}},
               {"NodeID": "b", "Alive": False, "Labels": {}, "Resources": {"CPU": 64.0}},
               {"NodeID": "c", "Alive": True, "Labels": {}, "Resources": {"CPU": 2.0, "GPU": 1.0}}]
    assert live_nodes(entries) == [NodeInfo("a", {"fervid.io/node": "cpu"}, 4.0, 0.0), NodeInfo("c", {}, 2.0, 1.0)]

"""Where the service's actors go in a cluster, and how many of them there are.

Ray places an actor on any node with the resources it asks for. On a cluster of CPU and GPU
nodes that is not enough: Haar detectors would fill the GPU nodes' CPUs, which the inference
actors there need for feeding the GPU. Nodes therefore carry Ray labels (``ray start --labels
fervid.io/node=cpu``; the cluster-launcher and KubeRay manifests in ``deploy/`` set them) and each
actor kind may name the labels its node must have (``detector.label_selector`` and so on), in
Ray's own label-selector syntax, which this module checks and evaluates so that sizing (how many
detectors fit on the matching nodes) and a selector that no node matches are decided before any
actor is created, with a one-line error instead of an actor waiting forever for a node.

The planning functions are pure: they take the node list (``ray.nodes()``) so tests can hand
them any cluster shape.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

LabelSelector = dict[str, str]

# Ray 2.60's syntax (ray._private.label_utils), so a selector Ray would refuse is refused when
# the config is read: keys are an optional dotted prefix and a name; values are a value,
# "!value", "in(a,b)" or "!in(a, b)" (at most one space after each comma).
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?"
_KEY = re.compile(rf"(?:{_NAME}(?:\.{_NAME})*/)?{_NAME}")
_VALUE = re.compile(rf"(!)?(?:in\(({_NAME}(?:, ?{_NAME})*)\)|({_NAME}))")
RESERVED_PREFIX = "ray.io/"


def check_selector(selector: Mapping[str, str], key_name: str = "label_selector") -> LabelSelector:
    """Return the selector unchanged, or raise ``ValueError`` naming the offending entry."""
    for key, value in selector.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(f"{key_name}: invalid label key {key!r} (letters, digits, - _ . and an "
                             "optional DNS prefix such as fervid.io/)")
        if not isinstance(value, str) or not _VALUE.fullmatch(value):
            raise ValueError(f"{key_name}: invalid selector {value!r} for {key!r} "
                             "(use VALUE, !VALUE, in(A,B) or !in(A,B))")
    return dict(selector)


def selector_matches(selector: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    """Whether a node with ``labels`` satisfies ``selector`` (Ray's semantics: a negated
    entry also matches a node that lacks the label)."""
    for key, expression in (selector or {}).items():
        match = _VALUE.fullmatch(expression)
        if match is None:  # checked by the config already
            raise ValueError(f"invalid selector {expression!r}")
        negated, listed, single = match.groups()
        wanted = {v.strip() for v in listed.split(",")} if listed else {single}
        present = labels.get(key) in wanted
        if present == bool(negated):
            return False
    return True


@dataclass(frozen=True)
class NodeInfo:
    """What planning needs to know of one live node."""

    node_id: str
    labels: dict[str, str]
    cpus: float
    gpus: float

    @classmethod
    def from_ray(cls, entry: Mapping) -> "NodeInfo":
        resources = entry.get("Resources") or {}
        return cls(node_id=str(entry.get("NodeID", "")), labels=dict(entry.get("Labels") or {}),
                   cpus=float(resources.get("CPU", 0)), gpus=float(resources.get("GPU", 0)))


def live_nodes(ray_nodes: Iterable[Mapping]) -> list[NodeInfo]:
    """The nodes of ``ray.nodes()`` that are alive."""
    return [NodeInfo.from_ray(entry) for entry in ray_nodes if entry.get("Alive", True)]


def matching(nodes: Iterable[NodeInfo], selector: Mapping[str, str] | None) -> list[NodeInfo]:
    return [node for node in nodes if selector_matches(selector, node.labels)]


@dataclass(frozen=True)
class Plan:
    """How many actors of each pooled kind the service starts, and what each reserves."""

    inference_actors: int
    gpus_per_inference: float
    detectors: int


class PlacementError(ValueError):
    """No node of the cluster can host an actor kind as configured."""


def _describe(selector: Mapping[str, str] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in (selector or {}).items()) or "any node"


def plan(nodes: list[NodeInfo], *, inference_selector: Mapping[str, str] | None,
         inference_actors: int | None, gpus_per_inference: float | None, inference_cpus: float,
         detector_selector: Mapping[str, str] | None, detector_pool: int | None, detector_cpus: float,
         capture_selector: Mapping[str, str] | None, captures: int, capture_cpus: float) -> Plan:
    """Size the inference actors and the detector pool for this cluster.

    Inference: one actor per GPU of the nodes its selector admits (``gpus_per_inference`` GPUs
    each, fractions allowed), or one CPU actor when those nodes have no GPU. Detectors: as many
    as the CPUs of their nodes hold, less what inference and capture actors reserve on the same
    nodes. Raises ``PlacementError`` when a selector admits no live node.
    """
    inference_nodes = matching(nodes, inference_selector)
    detector_nodes = matching(nodes, detector_selector)
    for kind, chosen, selector in (("inference", inference_nodes, inference_selector),
                                   ("detector", detector_nodes, detector_selector)):
        if not chosen:
            raise PlacementError(f"no node of the cluster matches {kind}.label_selector "
                                 f"({_describe(selector)}); start nodes with `ray start --labels ...` "
                                 "or change the selector")
    gpus = sum(node.gpus for node in inference_nodes)
    per_gpu = gpus_per_inference if gpus_per_inference is not None else (1.0 if gpus >= 1 else 0.0)
    if per_gpu > 0 and gpus < per_gpu:
        raise PlacementError(f"inference.num_gpus is {per_gpu:g} but the nodes matching "
                             f"inference.label_selector ({_describe(inference_selector)}) have "
                             f"{gpus:g} GPU(s)")
    n_inference = inference_actors or (max(1, int(gpus // per_gpu)) if per_gpu > 0 else 1)
    if detector_pool:
        return Plan(n_inference, per_gpu, detector_pool)
    detector_ids = {node.node_id for node in detector_nodes}
    cpus = sum(node.cpus for node in detector_nodes)
    reserved = 0.0
    if inference_cpus and any(node.node_id in detector_ids for node in inference_nodes):
        reserved += n_inference * inference_cpus
    if capture_cpus and any(node.node_id in detector_ids for node in matching(nodes, capture_selector)):
        reserved += captures * capture_cpus
    return Plan(n_inference, per_gpu, max(1, int((cpus - reserved) // detector_cpus)))

"""Run the service with deploy/cluster/fervid-cluster.yaml on a real three-node Ray cluster on
this machine and print, as one JSON document, the label of the node every actor landed on.

A separate process because a driver joins one Ray cluster for its life, and the test session
already has its own. The nodes are real raylets (``ray.cluster_utils.Cluster``) with the labels
the launcher and KubeRay manifests give: a head without CPUs for work, a CPU node and a node
that declares one GPU. The GPU is declared, not present: placement is what is checked here,
and TensorFlow (CPU build) runs the model wherever it lands.

    python -m tests.deploy.placement_probe PORT_ZMQ PORT_METRICS CAMERA_URL
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLUSTER_CONFIG = REPO / "deploy" / "cluster" / "fervid-cluster.yaml"
LABEL = "fervid.io/node"


def main(zmq_port: int, metrics_port: int, camera_url: str) -> dict:
    import ray
    import yaml
    from ray.cluster_utils import Cluster

    from fervid.services.config import parse_config
    from fervid.services.service import start_service, stop_service

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "labels": {LABEL: "head"}})
    cluster.add_node(num_cpus=2, labels={LABEL: "cpu"})
    cluster.add_node(num_cpus=1, num_gpus=1, labels={LABEL: "gpu"})
    ray.init(address=cluster.address, log_to_driver=False)
    raw = yaml.safe_load(CLUSTER_CONFIG.read_text())
    raw["publisher"]["endpoint"] = f"tcp://127.0.0.1:{zmq_port}"
    raw["metrics"].update(host="127.0.0.1", port=metrics_port)
    raw["inference"]["num_gpus"] = 0.5  # a fraction: two inference actors share the one GPU
    raw["ray"]["address"] = None
    raw["streams"].append({"name": "netcam", "source": camera_url})
    config = parse_config(raw, origin=str(CLUSTER_CONFIG), base=CLUSTER_CONFIG.parent)
    controller = start_service(config)
    try:
        deadline = time.monotonic() + 240
        streams: list = []
        while time.monotonic() < deadline:
            streams = ray.get(controller.status.remote(), timeout=30)["streams"]
            if all(s.get("frames_processed", 0) > 3 for s in streams):
                break
            time.sleep(1)
        labels = {node["NodeID"]: node["Labels"].get(LABEL) for node in ray.nodes() if node["Alive"]}
        placed = {actor["Name"]: labels.get(actor["Address"]["NodeID"])
                  for actor in ray._private.state.actors().values()
                  if actor["State"] == "ALIVE" and actor.get("Name")}
        return {"placed": placed, "processed": {s["name"]: s.get("frames_processed", 0) for s in streams}}
    finally:
        stop_service(controller)
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])), flush=True)

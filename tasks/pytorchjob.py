"""Training as a Kubeflow PyTorchJob (``launch.kind: pytorchjob``): render the manifest, submit it, wait for it.

kubectl does the talking, so the flow needs no Kubernetes client library and uses whatever access kubectl has (in a
flow-run pod: the service account of infra/k8s/flow-runner-rbac.yaml). The job's pods read the flow's params file
and write artifacts/trained on the shared workspace volume, where the flow's later stages find them.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rerank_lib.errors import ConfigError, RerankError
from tasks.config import LaunchConfig
from tasks.layout import Layout
from tasks.param_sources import read_yaml
from tasks.tracking import RUN_ID_ENV

logger = logging.getLogger(__name__)
Log = logging.Logger | logging.LoggerAdapter

CONTAINER = "pytorch"  # the container the training operator configures (PET_* variables, the master port)
GPU = "nvidia.com/gpu"
TRAIN_ARGS = ["stage", "train"]
KUBECTL_TIMEOUT = 120  # seconds for one kubectl call; the job itself may run for hours
MAX_GET_FAILURES = 5  # consecutive failed polls before giving up (an API server restart should not end training)
CLOCK_SLACK = 300  # seconds of clock difference tolerated between the pods' volume writes and this machine


class TrainingProcessError(RerankError):
    """Training failed (a local subprocess or a PyTorchJob); the message holds the log tail or the job's reason."""


class JobFailedError(TrainingProcessError):
    """The PyTorchJob reported a Failed condition: the job is left in place so its pods' logs can be read."""


@dataclass(frozen=True)
class RenderedJob:
    """The manifest to hand to ``kubectl create`` and the namespace to watch the job in."""

    manifest: str
    namespace: str


@dataclass(frozen=True)
class JobRef:
    name: str
    namespace: str


# ---------------------------------------------------------------------------------------------------------- render


def load_manifest(path: Path) -> dict[str, Any]:
    """The PyTorchJob template, with YAML anchors unshared so each replica can be edited on its own."""
    doc = read_yaml(path, label="launch.manifest")
    if doc.get("kind") != "PyTorchJob":
        raise ConfigError(f"launch.manifest {path} must hold one PyTorchJob.")
    if "Master" not in (doc.get("spec") or {}).get("pytorchReplicaSpecs", {}):
        raise ConfigError(f"launch.manifest {path}: spec.pytorchReplicaSpecs has no Master.")
    return json.loads(json.dumps(doc))


def trainer_container(pod_spec: dict[str, Any], source: Path) -> dict[str, Any]:
    """The container named ``pytorch``, which the training operator (and this module) configure."""
    for container in pod_spec.get("containers", []):
        if container.get("name") == CONTAINER:
            return container
    raise ConfigError(f"launch.manifest {source}: a replica has no container named {CONTAINER!r}.")


def configure_container(container: dict[str, Any], launch: LaunchConfig, run_id: str, params_path: str) -> None:
    """Image, GPUs = processes per pod, the flow's params file and MLflow run, so all ranks log to that run."""
    args = container.get("args") or []
    if args[-2:] != TRAIN_ARGS:
        raise ConfigError(f"launch.manifest: the {CONTAINER} container's args must end with `stage train`.")
    container["args"] = [*args[:-2], "--params", params_path, *TRAIN_ARGS]
    container["image"] = launch.image
    env = [item for item in container.get("env") or [] if item.get("name") != RUN_ID_ENV]
    container["env"] = [*env, {"name": RUN_ID_ENV, "value": run_id}]
    for section in (container.get("resources") or {}).values():
        if isinstance(section, dict) and GPU in section:
            section[GPU] = launch.num_processes


def set_topology(replicas: dict[str, Any], nodes: int) -> None:
    """One Master pod plus ``nodes - 1`` Worker pods (no Worker entry at all for a single node)."""
    replicas["Master"]["replicas"] = 1
    if nodes > 1:
        worker = replicas.get("Worker") or json.loads(json.dumps(replicas["Master"]))
        worker["replicas"] = nodes - 1
        replicas["Worker"] = worker
    else:
        replicas.pop("Worker", None)


def render_manifest(launch: LaunchConfig, root: Path, run_id: str, params_path: str) -> RenderedJob:
    """The manifest of ``launch.manifest`` set up for this flow run; ``params_path`` is relative to the root."""
    if not (launch.image or "").strip():
        raise ConfigError("launch.image is required when launch.kind is 'pytorchjob'.")
    source = root / launch.manifest
    job = load_manifest(source)
    metadata = job.setdefault("metadata", {})
    namespace = launch.namespace or metadata.get("namespace") or "default"
    metadata["namespace"] = namespace
    job["spec"]["nprocPerNode"] = str(launch.num_processes)
    replicas = job["spec"]["pytorchReplicaSpecs"]
    set_topology(replicas, launch.nodes)
    for replica in replicas.values():
        configure_container(trainer_container(replica["template"]["spec"], source), launch, run_id, params_path)
    return RenderedJob(yaml.safe_dump(job, sort_keys=False), namespace)


# ---------------------------------------------------------------------------------------------------------- kubectl


def kubectl(binary: str, args: list[str], stdin: str | None = None) -> str:
    """Run kubectl and return its stdout; a failure names the command and kubectl's own message."""
    try:
        done = subprocess.run(
            [binary, *args], input=stdin, capture_output=True, text=True, timeout=KUBECTL_TIMEOUT, check=False
        )
    except FileNotFoundError as error:
        raise TrainingProcessError(f"launch.kubectl {binary!r} was not found on PATH.") from error
    except subprocess.TimeoutExpired as error:
        raise TrainingProcessError(f"`kubectl {' '.join(args[:2])}` did not answer in {KUBECTL_TIMEOUT} s.") from error
    if done.returncode != 0:
        raise TrainingProcessError(
            f"`kubectl {' '.join(args[:2])}` exited with {done.returncode}: {done.stderr.strip()[-2000:]}"
        )
    return done.stdout


def submit_job(binary: str, job: RenderedJob) -> JobRef:
    """``kubectl create`` (not apply: the name is generated per submission), manifest on stdin."""
    out = kubectl(binary, ["create", "-f", "-", "-o", "name"], stdin=job.manifest).strip()
    kind, _, name = out.rpartition("/")
    if not name or not kind.startswith("pytorchjob"):
        raise TrainingProcessError(f"`kubectl create` did not name a PyTorchJob: {out[:200]!r}")
    return JobRef(name, job.namespace)


def job_conditions(binary: str, ref: JobRef) -> list[dict[str, Any]]:
    """The job's status conditions, oldest first (Created, Running, Succeeded or Failed, ...)."""
    out = kubectl(binary, ["get", "pytorchjob", ref.name, "-n", ref.namespace, "-o", "json"])
    try:
        return list((json.loads(out).get("status") or {}).get("conditions") or [])
    except (json.JSONDecodeError, AttributeError) as error:
        raise TrainingProcessError(f"`kubectl get pytorchjob {ref.name}` did not return a job: {error}") from error


def delete_job(binary: str, ref: JobRef, log: Log) -> None:
    """Free the GPUs of a job the flow gave up on; a failure here is logged, not raised over the real error."""
    try:
        kubectl(binary, ["delete", "pytorchjob", ref.name, "-n", ref.namespace, "--wait=false", "--ignore-not-found"])
        log.warning("Deleted PyTorchJob %s/%s.", ref.namespace, ref.name)
    except TrainingProcessError as error:
        log.error("Could not delete PyTorchJob %s/%s: %s", ref.namespace, ref.name, error)


# ---------------------------------------------------------------------------------------------------------- wait


def final_condition(conditions: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The Succeeded or Failed condition once the job has finished, else None."""
    for condition in reversed(conditions):
        if condition.get("type") in ("Succeeded", "Failed") and str(condition.get("status")) == "True":
            return condition
    return None


def describe(condition: dict[str, Any] | None) -> str:
    if not condition:
        return "no condition reported yet"
    reason = f" ({condition['reason']})" if condition.get("reason") else ""
    return f"{condition.get('type')}{reason}: {condition.get('message', '')}"


def wait_for_job(binary: str, ref: JobRef, timeout: float, poll: float, log: Log) -> dict[str, Any]:
    """Poll until the job succeeds (its condition is returned); a Failed condition or the deadline raises."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] | None = None
    failures = 0
    while True:
        try:
            conditions = job_conditions(binary, ref)
            failures = 0
        except TrainingProcessError as error:
            failures += 1
            if failures >= MAX_GET_FAILURES:
                raise
            log.warning("Polling PyTorchJob %s failed (%d/%d): %s", ref.name, failures, MAX_GET_FAILURES, error)
            conditions = []
        if conditions and conditions[-1] != last:
            last = conditions[-1]
            log.info("PyTorchJob %s/%s: %s", ref.namespace, ref.name, describe(last))
        finished = final_condition(conditions)
        if finished and finished.get("type") == "Succeeded":
            return finished
        if finished:
            raise JobFailedError(f"PyTorchJob {ref.namespace}/{ref.name} failed: {describe(finished)}")
        if time.monotonic() >= deadline:
            raise TrainingProcessError(
                f"PyTorchJob {ref.namespace}/{ref.name} exceeded launch.timeout_seconds={timeout:.0f}; "
                f"its last condition: {describe(last)}"
            )
        time.sleep(max(0.0, min(poll, deadline - time.monotonic())))


def check_trained_model(path: Path, submitted: float, log: Log) -> None:
    """The job wrote artifacts/trained on its volume: it must be visible here, or evaluate would fail or be stale."""
    if not path.is_dir():
        raise TrainingProcessError(
            f"The PyTorchJob succeeded but {path} does not exist here: the flow must run with the job's workspace "
            "volume mounted at artifacts/ (infra/k8s/workspace-pvc.yaml)."
        )
    newest = max(p.stat().st_mtime for p in [path, *path.rglob("*")])
    if newest < submitted - CLOCK_SLACK:
        log.warning("%s predates the PyTorchJob: is the flow's artifacts/ the job's workspace volume?", path)


def run_pytorchjob(launch: LaunchConfig, root: Path, run_id: str, params_file: Path, log: Log = logger) -> JobRef:
    """Render, submit and wait; a job the flow stops waiting for (deadline, cancellation) is deleted."""
    try:
        params_path = params_file.resolve().relative_to(root.resolve()).as_posix()
    except ValueError as error:
        raise ConfigError(f"The params file {params_file} must be inside the project root {root}.") from error
    job = render_manifest(launch, root, run_id, params_path)
    submitted = time.time()
    ref = submit_job(launch.kubectl, job)
    log.info(
        "Submitted PyTorchJob %s/%s (%d x %d processes).", ref.namespace, ref.name, launch.nodes, launch.num_processes
    )
    try:
        wait_for_job(launch.kubectl, ref, launch.timeout_seconds, launch.poll_seconds, log)
    except JobFailedError:
        raise
    except BaseException:
        delete_job(launch.kubectl, ref, log)
        raise
    check_trained_model(Layout(root).trained_model, submitted, log)
    return ref

"""Roll a model's serving pods onto a release: patch the release annotation of its Deployment's pod template.

A changed pod template makes Kubernetes replace the pods (a rolling update); the new pods' init
container fetches what release.json names. The Pulumi program ignores this annotation, so a later
`pulumi up` leaves the deploy in place. Called by the deploy asset off the local environment.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from mlops import cluster

ROLLOUT_TIMEOUT_S = 900.0  # past the Deployment's own progressDeadlineSeconds (600 by default)


class RolloutFailed(Exception):
    """The serving pods of a release did not become ready: the rollout stalled or its deadline passed."""


@dataclass(frozen=True)
class Ready:
    seconds: float
    replicas: int


def patch_body(version: int | str) -> dict[str, Any]:
    """A strategic merge patch touching only the release annotation of the pod template."""
    return {"spec": {"template": {"metadata": {"annotations": {cluster.RELEASE_ANNOTATION: str(version)}}}}}


def apps_api() -> Any:
    """AppsV1Api with the pod's service account in a cluster, else the kubeconfig of whoever runs it."""
    import kubernetes

    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()
    return kubernetes.client.AppsV1Api()


def roll(model: str, version: int | str, api: Any | None = None) -> dict[str, Any]:
    """Patch the annotation to `version`; returns what the API server says the pod template now carries."""
    api = api or apps_api()
    result = api.patch_namespaced_deployment(
        name=cluster.deployment(model), namespace=cluster.namespace(model), body=patch_body(version)
    )
    meta = result.spec.template.metadata
    return {
        "deployment": result.metadata.name,
        "namespace": result.metadata.namespace,
        "release": (meta.annotations or {}).get(cluster.RELEASE_ANNOTATION),
        "generation": result.metadata.generation,
    }


def rollout_state(deployment: Any, generation: int) -> tuple[bool, str]:
    """(done, why not) for a Deployment object, as `kubectl rollout status` decides it."""
    status = deployment.status
    want = deployment.spec.replicas if deployment.spec.replicas is not None else 1
    if (status.observed_generation or 0) < generation:
        return False, "waiting for the rollout to be observed"
    for c in status.conditions or []:
        if c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded":
            raise RolloutFailed(f"rollout exceeded its progress deadline: {c.message}")
    updated, total, available = status.updated_replicas or 0, status.replicas or 0, status.available_replicas or 0
    if updated < want:
        return False, f"{updated} of {want} new replicas updated"
    if total > updated:
        return False, f"{total - updated} old replicas pending termination"
    if available < updated:
        return False, f"{available} of {updated} updated replicas available"
    return True, ""


def wait_ready(
    model: str,
    generation: int,
    api: Any | None = None,
    timeout: float = ROLLOUT_TIMEOUT_S,
    poll_seconds: float = 2.0,
) -> Ready:
    """Wait until the rollout of `generation` (what roll() returned) is complete and available."""
    api = api or apps_api()
    started = time.monotonic()
    why = "not read yet"
    while time.monotonic() - started < timeout:
        deployment = api.read_namespaced_deployment_status(
            name=cluster.deployment(model), namespace=cluster.namespace(model)
        )
        done, why = rollout_state(deployment, generation)
        if done:
            return Ready(time.monotonic() - started, deployment.status.available_replicas or 0)
        time.sleep(poll_seconds)
    raise RolloutFailed(f"the serving pods were not ready within {timeout:g} s: {why}")

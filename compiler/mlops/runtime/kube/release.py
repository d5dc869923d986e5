"""Roll a model's serving pods onto a release: patch the release annotation of its Deployment's pod template.

A changed pod template makes Kubernetes replace the pods (a rolling update); the new pods' init
container fetches what release.json names. The Pulumi program ignores this annotation, so a later
`pulumi up` leaves the deploy in place. Called by the deploy asset off the local environment.
"""

from __future__ import annotations

from typing import Any

from mlops import cluster


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

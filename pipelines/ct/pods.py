"""What each KFP backend makes of a task's Kubernetes platform config, and whether the pod can start.

A stand-in (the Go compiler and driver cannot run here) following kubeflow/pipelines at 2.5.0,
2.15.0, 2.16.0 and 2.17.0:

- **env from Secrets and ConfigMaps** (driver ``extendPodSpecPatch``: ``backend/src/v2/driver/driver.go``
  2.5.0 l.895-969, ``k8s.go`` 2.17.0 l.349-452): an EnvVar with a ``secretKeyRef`` / ``configMapKeyRef``;
  2.5.0 sets no ``Optional`` (its proto has none: the reference is required), 2.15+ copies it when given;
- **ConfigMap and Secret volumes**: ``Optional`` set on the volume source at every version;
- **pod labels** from ``podMetadata`` (the compiler's ``extendPodMetadata``, argocompiler/container.go;
  2.5.0 skips it silently when the config does not parse strictly: ``pipelines.ct.targets`` fits it);
- **security context**: 2.5.0 and 2.15.0 set none (argo.go, ``PIPELINE_RUN_AS_USER`` aside); from 2.16.0
  ``argocompiler/security_context.go`` gives every pod ``runAsNonRoot`` and RuntimeDefault seccomp at the
  workflow level (argo.go), the executor's main container no privilege escalation, capabilities dropped
  and RuntimeDefault seccomp, its ``kfp-launcher`` init container the same with ``runAsNonRoot``; the
  driver puts the task's ``securityContext`` (user, group, non-root) on the main container and always
  drops every capability (``k8s.go`` 2.17.0 l.749-785); Argo's ``wait`` container runs as 65532, non-root,
  no escalation, capabilities dropped (manifests/kustomize/third-party/argo/base/
  workflow-controller-configmap-patch.yaml, 2.16.0 and later; nothing before).

And of what the kubelet then does with the pod: a required reference to a Secret, ConfigMap or key
that is not there leaves the container in ``CreateContainerConfigError`` (it never starts, and the
run waits); a required volume source that is not there leaves the pod ``ContainerCreating``
(``FailedMount``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from pipelines.ct.targets import target as supported

_STRICT = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
           "seccompProfile": {"type": "RuntimeDefault"}}


@dataclass
class TaskPod:
    """A task's executor pod as a target's backend makes it, and what stops it from starting."""

    labels: dict[str, str]
    spec: dict[str, Any]
    refusals: list[str] = field(default_factory=list)


def _at_least(target_name: str, version: tuple[int, int]) -> bool:
    return tuple(int(p) for p in supported(target_name).kfp_backend.split(".")[:2]) >= version


def namespace_objects(objects: list[dict[str, Any]], namespace: str) -> dict[tuple[str, str], dict[str, str]]:
    """(kind, name) -> data (Secrets' base64 ``data`` decoded, ``stringData`` merged) of one namespace's objects."""
    found = {}
    for obj in objects:
        if obj.get("kind") not in ("ConfigMap", "Secret") or obj["metadata"].get("namespace", namespace) != namespace:
            continue
        data = dict(obj.get("data") or {})
        if obj["kind"] == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in data.items()}
            data.update(obj.get("stringData") or {})
        found[(obj["kind"], obj["metadata"]["name"])] = data
    return found


def executor_pod(config: dict[str, Any], target_name: str, objects: dict[tuple[str, str], dict[str, str]],
                 namespace: str, image: str = "image") -> TaskPod:
    """The executor pod of a task whose platform config (fitted to the target) is ``config``.

    Args:
        config: The task's ``KubernetesExecutorConfig`` as JSON (``pipelines.ct.targets.executor_configs``).
        target_name: The KFP backend (``pipelines.ct.targets.TARGETS``).
        objects: The namespace's ConfigMaps and Secrets (``namespace_objects``).
        namespace: Where the pod runs (named in the kubelet's messages).
        image: The main container's image.
    """
    hardened = _at_least(target_name, (2, 16))
    # 2.5.0's driver ignores fields its proto lacks (AllowUnknownFields): no `optional` on env there.
    env_optional = _at_least(target_name, (2, 15))
    refusals, env, volumes, mounts = [], [], [], []
    for kind, entries, name_key, key_key in (("Secret", config.get("secretAsEnv") or [], "secretName", "secretKey"),
                                             ("ConfigMap", config.get("configMapAsEnv") or [], "configMapName",
                                              "configMapKey")):
        for entry in entries:
            optional = bool(entry.get("optional")) and env_optional
            name = entry[name_key]
            data = objects.get((kind, name))
            for pair in entry.get("keyToEnv") or []:
                key = pair[key_key]
                ref = {"name": name, "key": key, **({"optional": True} if optional else {})}
                selector = "secretKeyRef" if kind == "Secret" else "configMapKeyRef"
                env.append({"name": pair["envVar"], "valueFrom": {selector: ref}})
                if optional:
                    continue
                if data is None:
                    refusals.append(f"CreateContainerConfigError: {kind.lower()} \"{name}\" not found "
                                    f"(env {pair['envVar']})")
                elif key not in data:
                    refusals.append(f"CreateContainerConfigError: couldn't find key {key} in {kind} "
                                    f"{namespace}/{name} (env {pair['envVar']})")
    for kind, entries, name_key in (("ConfigMap", config.get("configMapAsVolume") or [], "configMapName"),
                                    ("Secret", config.get("secretAsVolume") or [], "secretName")):
        for entry in entries:
            name, optional = entry[name_key], bool(entry.get("optional"))
            source = ({"configMap": {"name": name, "optional": optional}} if kind == "ConfigMap"
                      else {"secret": {"secretName": name, "optional": optional}})
            volumes.append({"name": name, **source})
            mounts.append({"name": name, "mountPath": entry["mountPath"]})
            if not optional and (kind, name) not in objects:
                refusals.append(f"FailedMount: {kind.lower()} \"{name}\" not found")
    main: dict[str, Any] = {"name": "main", "image": image, "env": env, "volumeMounts": mounts}
    init = {"name": "kfp-launcher", "image": "kfp-launcher"}
    wait = {"name": "wait", "image": "argoexec"}
    pod_context: dict[str, Any] = {}
    if hardened:
        pod_context = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
        task_context = config.get("securityContext") or {}  # int64 fields are strings in proto JSON
        main["securityContext"] = {**_STRICT, **{k: int(task_context[k]) for k in ("runAsUser", "runAsGroup")
                                                 if k in task_context},
                                   **({"runAsNonRoot": task_context["runAsNonRoot"]}
                                      if "runAsNonRoot" in task_context else {})}
        init["securityContext"] = {**_STRICT, "runAsNonRoot": True}
        wait["securityContext"] = {**_STRICT, "runAsNonRoot": True, "runAsUser": 65532}
    spec = {"securityContext": pod_context, "initContainers": [init], "containers": [wait, main], "volumes": volumes}
    labels = {"pipelines.kubeflow.org/v2_component": "true",
              **((config.get("podMetadata") or {}).get("labels") or {})}
    return TaskPod(labels, spec, refusals)


def task_executors(pipeline_spec: dict[str, Any]) -> dict[str, str]:
    """Task name -> executor label, over the root DAG and every sub-DAG of a compiled pipeline spec."""
    components = pipeline_spec.get("components") or {}
    found = {}
    dags = [pipeline_spec["root"]] + [c for c in components.values() if "dag" in c]
    for dag in dags:
        for name, task in (dag.get("dag") or {}).get("tasks", {}).items():
            component = components.get(task["componentRef"]["name"]) or {}
            if "executorLabel" in component:
                found[name] = component["executorLabel"]
    return found


def pod_refusals(yaml_text: str, target_name: str, objects: dict[tuple[str, str], dict[str, str]],
                 namespace: str) -> dict[str, list[str]]:
    """Task name -> why its pod would not start on the target (empty lists left out)."""
    import yaml

    from pipelines.ct.targets import executor_configs

    spec = next(d for d in yaml.safe_load_all(yaml_text) if d and "root" in d)
    configs = executor_configs(yaml_text)
    found = {}
    for task, executor in task_executors(spec).items():
        refusals = executor_pod(configs.get(executor) or {}, target_name, objects, namespace).refusals
        if refusals:
            found[task] = refusals
    return found

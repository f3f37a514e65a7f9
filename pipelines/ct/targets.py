"""Supported Kubeflow Pipelines backends, and the compiled platform spec fitted to each one's proto.

KFP's backend parses each task's Kubernetes platform config (``platforms.kubernetes`` of the
compiled YAML) with the ``kubernetes_executor_config.proto`` it vendors in-tree (its go.mod
replaces ``kubernetes_platform`` with ``./kubernetes_platform``), and the same messages are in a
kfp-kubernetes release on PyPI (compared descriptor by descriptor):

====================  ===========  ==============  =============================================
target                KFP backend  kfp-kubernetes  what its compiler does with an unknown field
====================  ===========  ==============  =============================================
``kubeflow-1.10``     2.5.0        1.5.0           strict jsonpb; on error the pod metadata
                                                   (labels) is silently skipped (container.go)
``kfp-2.15``          2.15.x       2.15.2          strict protojson: run creation fails
``kfp-2.16``          2.16.x       2.16.1          strict protojson: run creation fails
``kfp-2.17``          2.17.x       2.17.3          strict protojson: run creation fails
====================  ===========  ==============  =============================================

(kubeflow/pipelines backend/src/v2/compiler/argocompiler/container.go at 2.5.0, 2.15.0, 2.16.0,
2.17.0; the driver, backend/src/common/util/json.go, ignores unknown fields at every tag.)
So a spec compiled for a target holds only the fields that target's proto has: the SDK's
output is parsed with that proto, unknown fields dropped, and the rest written back. What a
target lacks is then not applied there: 2.5 and 2.15 have no ``securityContext`` (run as
non-root comes from the image's user only), 2.5 no ``optional`` on env references (a missing
ConfigMap or Secret key stops the pod instead of leaving the variable unset).

``python -m pipelines.ct.targets fetch``: download each target's kfp-kubernetes proto module
(``.venvs/platform-protos/<version>/``). ``... fit|check --target T`` read executor configs as
JSON on stdin (run by ``fit_platform_spec`` in a process of their own: one proto version per
process).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from typing import Any, Optional

from components.paths import REPO_ROOT


@dataclass(frozen=True)
class Target:
    """A supported KFP backend."""

    name: str
    kfp_backend: str
    kfp_kubernetes: str
    platform: str


TARGETS = {
    "kubeflow-1.10": Target("kubeflow-1.10", "2.5.0", "1.5.0", "Kubeflow 1.10 (multi-user, Istio)"),
    "kfp-2.15": Target("kfp-2.15", "2.15", "2.15.2", "standalone Kubeflow Pipelines 2.15"),
    "kfp-2.16": Target("kfp-2.16", "2.16", "2.16.1", "standalone Kubeflow Pipelines 2.16"),
    "kfp-2.17": Target("kfp-2.17", "2.17", "2.17.3", "standalone Kubeflow Pipelines 2.17"),
}
#: The committed ``pipelines/ct_pipeline.yaml``: the SDK's own output, which 2.16 and 2.17 accept whole.
DEFAULT_TARGET = "kfp-2.17"
PROTOS_DIR = os.path.join(REPO_ROOT, ".venvs", "platform-protos")
PROTO_MODULE = "kubernetes_executor_config_pb2"
OVERLAYS_DIR = os.path.join(REPO_ROOT, "manifests", "overlays")
#: The ConfigMap of an overlay holding the pipeline's defaults on that cluster (manifests/base/pipeline-defaults.yaml).
DEFAULTS_CONFIG_MAP = "ct-pipeline-defaults"
#: Its annotation: the targets the overlay runs on, comma-separated, the first the default.
TARGETS_ANNOTATION = "kfp-ct/kfp-targets"
UNSET = "set-by-overlay"


def target(name: str) -> Target:
    """The target of that name.

    Raises:
        ValueError: Not a supported target (the message lists them).
    """
    if name not in TARGETS:
        raise ValueError(f"target {name!r} is not supported; supported: "
                         + ", ".join(f"{t.name} (KFP {t.kfp_backend}, {t.platform})" for t in TARGETS.values()))
    return TARGETS[name]


@dataclass(frozen=True)
class Deployment:
    """An overlay (one cluster's manifests) with the KFP backend it runs on and the pipeline's defaults there."""

    overlay: str
    target: Target
    defaults: dict[str, str]


def target_of_backend(tag: str) -> Optional[str]:
    """The supported target whose KFP backend a server runs (its healthz ``tag_name``, e.g. "2.5.0"), or None."""
    release = tag.strip().lstrip("v").split(".")[:2]
    return next((t.name for t in TARGETS.values() if t.kfp_backend.split(".")[:2] == release), None)


def overlay_path(overlay: str) -> str:
    """An overlay's folder: a name under manifests/overlays, or a path to a kustomization of one's own."""
    folder = overlay if os.sep in overlay or os.path.isdir(overlay) else os.path.join(OVERLAYS_DIR, overlay)
    if not os.path.exists(os.path.join(folder, "kustomization.yaml")):
        known = sorted(n for n in os.listdir(OVERLAYS_DIR) if os.path.isdir(os.path.join(OVERLAYS_DIR, n)))
        raise ValueError(f"overlay {overlay!r}: no kustomization.yaml in {folder}; "
                         f"the repository's: {', '.join(known)}")
    return folder


def render(folder: str) -> list[dict]:
    """The objects ``kubectl kustomize`` renders from a kustomization folder.

    Raises:
        RuntimeError: kubectl is missing or refuses the kustomization (its message quoted).
    """
    import yaml

    return [o for o in yaml.safe_load_all(render_text(folder)) if o]


def render_text(folder: str) -> str:
    """The YAML ``kubectl kustomize`` renders from a kustomization folder.

    Raises:
        RuntimeError: kubectl is missing or refuses the kustomization (its message quoted).
    """
    try:
        result = subprocess.run(["kubectl", "kustomize", folder], capture_output=True, text=True, check=False)
    except FileNotFoundError as error:
        raise RuntimeError("kubectl is needed to render the overlay (it bundles kustomize)") from error
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {folder} failed: {result.stderr[-800:]}")
    return result.stdout


def deployment(overlay: str, target_name: str = "") -> Deployment:
    """The overlay's deployment: its target (``target_name``, else the first it names) and pipeline defaults.

    Raises:
        ValueError: No such overlay, no ConfigMap ct-pipeline-defaults in it, a value it leaves unset or
            that is no input of the pipeline (or not of its type), a target the overlay does not run on or
            that is not supported.
    """
    folder = overlay_path(overlay)
    found = [o for o in render(folder) if o.get("kind") == "ConfigMap"
             and o["metadata"]["name"] == DEFAULTS_CONFIG_MAP]
    if not found:
        raise ValueError(f"overlay {overlay!r} has no ConfigMap {DEFAULTS_CONFIG_MAP} (include manifests/base)")
    config = found[0]
    defaults = {key: str(value) for key, value in (config.get("data") or {}).items()}
    listed = (config["metadata"].get("annotations") or {}).get(TARGETS_ANNOTATION, "")
    unset = sorted(key for key, value in defaults.items() if value == UNSET) + (
        [f"annotation {TARGETS_ANNOTATION}"] if listed in ("", UNSET) else [])
    if unset:
        raise ValueError(f"overlay {overlay!r} leaves {', '.join(unset)} of {DEFAULTS_CONFIG_MAP} unset")
    from pipelines.ct.spec import parse_params

    try:
        parse_params([f"{key}={value}" for key, value in defaults.items()])
    except ValueError as error:
        raise ValueError(f"overlay {overlay!r}, ConfigMap {DEFAULTS_CONFIG_MAP}: {error}") from None
    names = [name.strip() for name in listed.split(",") if name.strip()]
    for name in names:
        target(name)  # an overlay naming an unsupported backend is refused as well
    chosen = target_name or names[0]
    if chosen not in names:
        raise ValueError(f"overlay {overlay!r} runs on {', '.join(names)} ({TARGETS_ANNOTATION}), not {chosen!r}")
    return Deployment(os.path.basename(os.path.normpath(folder)), target(chosen), defaults)


def overlays_for(target_name: str) -> list[str]:
    """The repository's overlays that run on a target, by name."""
    target(target_name)
    found = []
    for name in sorted(os.listdir(OVERLAYS_DIR)):
        if not os.path.exists(os.path.join(OVERLAYS_DIR, name, "kustomization.yaml")):
            continue
        config = next((o for o in render(os.path.join(OVERLAYS_DIR, name)) if o.get("kind") == "ConfigMap"
                       and o["metadata"]["name"] == DEFAULTS_CONFIG_MAP), None)
        listed = ((config or {}).get("metadata", {}).get("annotations") or {}).get(TARGETS_ANNOTATION, "")
        if target_name in [n.strip() for n in listed.split(",")]:
            found.append(name)
    return found


def proto_dir(version: str) -> str:
    """The folder of one kfp-kubernetes version's proto module (``fetch`` fills it)."""
    return os.path.join(PROTOS_DIR, version)


def fetch(versions: Optional[list[str]] = None) -> list[str]:
    """Downloads each kfp-kubernetes release (no dependencies) and keeps its proto module; returns the folders."""
    pip = os.path.join(REPO_ROOT, ".venvs", "tools", "bin", "pip")
    folders = []
    for version in versions or sorted({t.kfp_kubernetes for t in TARGETS.values()}):
        folder = proto_dir(version)
        if os.path.exists(os.path.join(folder, f"{PROTO_MODULE}.py")):
            folders.append(folder)
            continue
        download = os.path.join(PROTOS_DIR, "downloads", version)
        subprocess.run([pip, "download", f"kfp-kubernetes=={version}", "--no-deps", "-q", "-d", download], check=True)
        [archive] = [os.path.join(download, name) for name in os.listdir(download)]
        member = f"kfp/kubernetes/{PROTO_MODULE}.py"
        if archive.endswith(".whl"):
            with zipfile.ZipFile(archive) as wheel:
                data = wheel.read(member)
        else:  # an sdist (1.5.0 has no wheel)
            with tarfile.open(archive) as sdist:
                name = next(n for n in sdist.getnames() if n.endswith(member))
                data = sdist.extractfile(name).read()
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{PROTO_MODULE}.py"), "wb") as handle:
            handle.write(data)
        folders.append(folder)
    return folders


def _platform_doc(docs: list) -> Optional[dict]:
    return next((d for d in docs if isinstance(d, dict) and "platforms" in d), None)


def executor_configs(yaml_text: str) -> dict[str, dict]:
    """Executor -> its Kubernetes platform config, from a compiled pipeline YAML."""
    import yaml

    platform = _platform_doc(list(yaml.safe_load_all(yaml_text)))
    if platform is None:
        return {}
    return dict(platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"])


def _run(mode: str, version: str, configs: dict) -> dict:
    folder = proto_dir(version)
    if not os.path.exists(os.path.join(folder, f"{PROTO_MODULE}.py")):
        raise RuntimeError(f"the kfp-kubernetes {version} proto is not here ({folder}): make platform-protos")
    result = subprocess.run([sys.executable, "-m", "pipelines.ct.targets", mode, "--proto-dir", folder],
                            input=json.dumps(configs), capture_output=True, text=True, cwd=REPO_ROOT,
                            env={**os.environ, "PYTHONPATH": REPO_ROOT}, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{mode} with kfp-kubernetes {version}: {result.stderr[-1500:]}")
    return json.loads(result.stdout)


def check(yaml_text: str, target_name: str) -> dict[str, str]:
    """Executor -> the error the target's backend compiler would meet parsing its config (strictly); {} when none."""
    return _run("check", target(target_name).kfp_kubernetes, executor_configs(yaml_text))


def fit_platform_spec(yaml_text: str, target_name: str) -> tuple[str, dict[str, list[str]]]:
    """The compiled YAML with each executor's platform config holding only what the target's proto has.

    Returns:
        (the YAML, executor -> the fields dropped); the text unchanged when nothing is dropped.
    """
    import yaml

    configs = executor_configs(yaml_text)
    answer = _run("fit", target(target_name).kfp_kubernetes, configs)
    dropped = {name: fields for name, fields in answer["dropped"].items() if fields}
    if not dropped:
        return yaml_text, {}
    docs = list(yaml.safe_load_all(yaml_text))
    _platform_doc(docs)["platforms"]["kubernetes"]["deploymentSpec"]["executors"] = answer["configs"]
    header = "".join(line for line in yaml_text.splitlines(True) if line.startswith("#"))
    body = yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)
    return header + body, dropped


def _paths(value: Any, prefix: str = "") -> set[str]:
    if isinstance(value, dict):
        found = set()
        for key, item in value.items():
            found |= {f"{prefix}{key}"} | _paths(item, f"{prefix}{key}.")
        return found
    if isinstance(value, list):
        return set().union(*(_paths(item, prefix) for item in value)) if value else set()
    return set()


def _serve(mode: str, folder: str) -> int:
    """The ``fit`` / ``check`` commands: one proto version, loaded in this process."""
    sys.path.insert(0, folder)
    import kubernetes_executor_config_pb2 as pb  # noqa: E402 - the target's version, from ``folder``
    from google.protobuf import json_format

    configs = json.load(sys.stdin)
    if mode == "check":
        errors = {}
        for name, config in configs.items():
            try:
                json_format.ParseDict(config, pb.KubernetesExecutorConfig())
            except json_format.ParseError as error:
                errors[name] = str(error).splitlines()[0]
        print(json.dumps(errors))
        return 0
    fitted, dropped = {}, {}
    for name, config in configs.items():
        message = json_format.ParseDict(config, pb.KubernetesExecutorConfig(), ignore_unknown_fields=True)
        fitted[name] = json_format.MessageToDict(message)
        gone = _paths(config) - _paths(fitted[name])
        dropped[name] = sorted(path for path in gone if path.rpartition(".")[0] not in gone)
    print(json.dumps({"configs": fitted, "dropped": dropped}))
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    """Command line: fetch the protos, or fit/check configs given on stdin."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.ct.targets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["fetch", "fit", "check"])
    parser.add_argument("--proto-dir", help="fit, check: the folder holding one version's proto module")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        for folder in fetch():
            print(folder)
        return 0
    if not args.proto_dir:
        parser.error(f"{args.command} needs --proto-dir")
    return _serve(args.command, args.proto_dir)


if __name__ == "__main__":
    sys.exit(main())

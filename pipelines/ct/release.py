"""``make release IMAGE_REGISTRY=host:port/team [OVERLAY=...]``: images pushed, pipeline and overlays naming them.

One command for what a cluster needs before its first run (images that pull, references that
name them, a pipeline compiled for its backend and its defaults):

1. every runtime image ``make images`` built (``components.images``: ``localhost/kfp-ct/<runtime>``)
   is tagged ``<REGISTRY>/<runtime>:<version>`` and pushed with the container engine;
2. per overlay (``OVERLAY``, else every overlay of the repository; with ``KFP_TARGET`` alone, those
   that run on it), the pipeline is compiled with ``IMAGE_REGISTRY=<REGISTRY>`` (executor and
   predictor images) for the overlay's KFP backend with its defaults (``pipelines.ct.targets.deployment``)
   to ``<out>/<overlay>/ct_pipeline.yaml`` (upload it: ``make deploy-pipeline PACKAGE=...``), and the
   overlay is rendered with the registry's images (``<out>/<overlay>/kustomization.yaml`` over the
   repository's overlay: ``kubectl apply -k <out>/<overlay>``);
3. every image reference of ours in the compiled YAML and the rendered overlays is asked of the
   registry's HTTP API (``GET /v2/<name>/manifests/<tag>``, the OCI distribution spec): a
   reference that does not resolve fails the release. Images of others (Redis) are listed, not pushed.

Usage: ``python -m pipelines.ct.release --registry HOST:PORT/PREFIX [--overlay O] [--target T] [--engine podman]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Optional

from components.images import DEFAULT_REGISTRY, RUNTIMES, image
from components.paths import REPO_ROOT
from pipelines.ct.targets import OVERLAYS_DIR, Deployment, deployment, overlay_path, overlays_for, render_text


def _loopback(registry: str) -> bool:
    host = registry.split("/", 1)[0].rsplit(":", 1)[0]
    return host in ("localhost", "127.0.0.1", "[::1]")


def push_images(registry: str, engine: str) -> list[str]:
    """Tags and pushes every runtime image to the registry; returns the pushed references.

    Raises:
        RuntimeError: An image is not built, or the engine cannot push it (its output quoted).
    """
    pushed = []
    for runtime in RUNTIMES:
        source, target = image(runtime, DEFAULT_REGISTRY), image(runtime, registry)
        for command in ([engine, "tag", source, target],
                        [engine, "push", *(["--tls-verify=false"] if engine == "podman" and _loopback(registry)
                                           else []), target]):
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                hint = " (build it with make images)" if command[1] == "tag" else ""
                raise RuntimeError(f"{' '.join(command)} failed{hint}: {(result.stderr or result.stdout)[-800:]}")
        print(f"[release] pushed {target}", flush=True)
        pushed.append(target)
    return pushed


def compile_for(registry: str, out_dir: str, spec: str, chosen: Deployment) -> str:
    """Compiles the pipeline with the registry's images for a deployment to ``<out_dir>/ct_pipeline.yaml``."""
    path = os.path.join(out_dir, "ct_pipeline.yaml")
    env = {**os.environ, "IMAGE_REGISTRY": registry, "PYTHONPATH": REPO_ROOT}
    code = ("import json, sys; from pipelines.ct.compile import compile_to, pipelines; "
            "func, _ = pipelines()[0]; "
            "compile_to(func, sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]))")
    subprocess.run([sys.executable, "-c", code, path, spec, chosen.target.name, json.dumps(chosen.defaults)],
                   check=True, env=env, cwd=REPO_ROOT)
    return path


def render_overlay(registry: str, overlay: str, out_dir: str) -> str:
    """Writes a kustomization over an overlay with the registry's images to ``out_dir``; returns its rendering."""
    source = overlay_path(overlay)
    os.makedirs(out_dir, exist_ok=True)
    # The overlays render our images as the base names them (components.images' default registry).
    images = [{"name": f"{DEFAULT_REGISTRY}/{runtime}", "newName": f"{registry.rstrip('/')}/{runtime}",
               "newTag": image(runtime).rsplit(":", 1)[1]} for runtime in RUNTIMES]
    with open(os.path.join(out_dir, "kustomization.yaml"), "w", encoding="utf-8") as handle:
        json.dump({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                   "resources": [os.path.relpath(source, out_dir)], "images": images}, handle, indent=2)
    return render_text(out_dir)


def image_references(text: str) -> set[str]:
    """The container image references a YAML text names (``image:`` fields and pipeline executor images)."""
    return set(re.findall(r"""^\s*-?\s*image:\s*['"]?([^\s'"]+)""", text, re.MULTILINE))


def resolves(reference: str, timeout: float = 10.0) -> bool:
    """Whether a registry's HTTP API has the manifest of an image reference (``host[:port]/name:tag``)."""
    host, _, rest = reference.partition("/")
    name, _, tag = rest.rpartition(":")
    scheme = "http" if _loopback(host) else "https"
    request = urllib.request.Request(f"{scheme}://{host}/v2/{name}/manifests/{tag}", method="HEAD", headers={
        "Accept": ", ".join(["application/vnd.oci.image.manifest.v1+json",
                             "application/vnd.docker.distribution.manifest.v2+json",
                             "application/vnd.oci.image.index.v1+json",
                             "application/vnd.docker.distribution.manifest.list.v2+json"])})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def release(registry: str, engine: str, out_dir: str, spec: str = "", push: bool = True,
            overlays: Optional[list[str]] = None, target_name: str = "") -> dict:
    """Pushes, compiles and renders per overlay, and checks; returns what was released and what was checked.

    Raises:
        RuntimeError: A push failed, or a reference of ours does not resolve in the registry.
        ValueError: An overlay that does not exist or does not run on ``target_name``.
    """
    if "/" not in registry or registry.startswith(("http://", "https://")):
        raise RuntimeError(f"REGISTRY must be host[:port]/prefix (no scheme), got {registry!r}")
    if not overlays:
        overlays = overlays_for(target_name) if target_name else sorted(
            n for n in os.listdir(OVERLAYS_DIR) if os.path.exists(os.path.join(OVERLAYS_DIR, n, "kustomization.yaml")))
    if not overlays:
        raise ValueError(f"no overlay runs on {target_name}")
    chosen = [deployment(overlay, target_name) for overlay in overlays]
    os.makedirs(out_dir, exist_ok=True)
    pushed = push_images(registry, engine) if push else []
    references, released = {}, {}
    for each in chosen:
        folder = os.path.join(out_dir, each.overlay)
        os.makedirs(folder, exist_ok=True)
        pipeline = compile_for(registry, folder, spec, each)
        with open(pipeline, encoding="utf-8") as handle:
            references[f"pipeline {each.overlay}"] = image_references(handle.read())
        references[f"overlay {each.overlay}"] = image_references(render_overlay(registry, each.overlay, folder))
        released[each.overlay] = {"target": each.target.name, "kfp_backend": each.target.kfp_backend,
                                  "pipeline": pipeline, "apply": f"kubectl apply -k {folder}"}
        print(f"[release] {each.overlay}: pipeline for {each.target.name} -> {pipeline}", flush=True)
    ours = {ref for refs in references.values() for ref in refs if ref.startswith(registry.rstrip("/") + "/")}
    others = sorted({ref for refs in references.values() for ref in refs} - ours)
    missing = sorted(ref for ref in ours if not resolves(ref))
    if missing:
        raise RuntimeError(f"not in the registry: {', '.join(missing)}")
    foreign = [ref for ref in others if "kfp-ct" in ref]
    if foreign:
        raise RuntimeError(f"references of ours not released to {registry}: {', '.join(foreign)}")
    return {"registry": registry, "pushed": pushed, "overlays": released, "resolved": sorted(ours),
            "not_ours": others}


def main(argv: Optional[list[str]] = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.ct.release", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registry", required=True, help="host[:port]/prefix, e.g. registry.example/team")
    parser.add_argument("--engine", default="podman", help="docker or podman (default podman)")
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "var", "release"))
    parser.add_argument("--overlay", action="append", default=[],
                        help="an overlay to release for (repeatable; default: every overlay of the repository)")
    parser.add_argument("--target", default="", help="the KFP backend (default: each overlay's first)")
    parser.add_argument("--spec", default="", help="the dataset spec compiled in (default: the default example)")
    args = parser.parse_args(argv)
    try:
        result = release(args.registry, args.engine, args.out, args.spec, overlays=args.overlay,
                         target_name=args.target)
    except (RuntimeError, ValueError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

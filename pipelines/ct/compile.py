"""Compiles the pipelines to their committed YAML: ``python -m pipelines.ct.compile [--spec SPEC] [--check]``.

The dataset spec's JSON is compiled in as the ``dataset_spec`` input's default (and its model name as
``model_name``'s): a run started from the dashboard with no parameters trains that dataset; another
spec is a run parameter away (``dataset_spec``), or compiled in with ``--spec``. The same JSON is
written to ``manifests/base/dataset-spec.json``: the cluster's ConfigMap ``ct-dataset-spec``, which the
monitor and the watcher read (a changed spec is a changed ConfigMap, no image rebuild).

For a cluster, ``--overlay O [--target T]`` compiles with that overlay's pipeline defaults (its
ConfigMap ``ct-pipeline-defaults``: feature repository, feature server, payload logger, registry,
namespace, ...) and the platform spec fitted to its KFP backend (``pipelines.ct.targets``): a run
there needs no parameter but its window.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import tempfile
from typing import Optional


def pipelines():
    """(pipeline function, committed YAML path) for every pipeline of the repo."""
    from pipelines.ct.pipeline import ct_pipeline
    from pipelines.ct.spec import PIPELINE_YAML

    return [(ct_pipeline, PIPELINE_YAML)]


def compile_to(pipeline_func, path: str, spec_path: str = "", target: str = "",
               defaults: Optional[dict[str, str]] = None) -> dict[str, list[str]]:
    """Compiles one pipeline function into a YAML file, the dataset spec's JSON as ``dataset_spec``'s default.

    For a target other than the default (``pipelines.ct.targets``), each task's platform config keeps only
    the fields that target's backend knows; ``defaults`` (a cluster's, ``pipelines.ct.targets.deployment``)
    become the inputs' defaults.

    Returns:
        Executor -> the platform fields dropped for the target ({} for the default).

    Raises:
        ValueError: The target is not supported, or a default is not an input of the pipeline.
    """
    from kfp import compiler

    from components.dataset_spec import DatasetSpec
    from pipelines.ct.spec import parse_params
    from pipelines.ct.targets import DEFAULT_TARGET, fit_platform_spec
    from pipelines.ct.targets import target as supported
    from pipelines.examples import DEFAULT_SPEC

    target = supported(target or DEFAULT_TARGET).name
    spec = DatasetSpec.load(spec_path or DEFAULT_SPEC)
    parameters = {**parse_params([f"{key}={value}" for key, value in (defaults or {}).items()]),
                  "dataset_spec": spec.to_json(), "model_name": spec.model_name}
    compiler.Compiler().compile(pipeline_func, package_path=path, pipeline_parameters=parameters)
    if target == DEFAULT_TARGET:
        return {}
    with open(path, encoding="utf-8") as handle:
        fitted, dropped = fit_platform_spec(handle.read(), target)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(fitted)
    return dropped


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: The spec's JSON for the cluster's services (manifests/base/kustomization.yaml generates a ConfigMap from it).
MANIFEST_SPEC = os.path.join(REPO_ROOT, "manifests", "base", "dataset-spec.json")


def manifest_spec_text(spec_path: str = "") -> str:
    """The dataset spec's JSON as the manifests hold it (indented: a reviewer reads its diff)."""
    import json

    from components.dataset_spec import DatasetSpec
    from pipelines.examples import DEFAULT_SPEC

    spec = DatasetSpec.load(spec_path or DEFAULT_SPEC)
    return json.dumps(json.loads(spec.to_json()), indent=2, sort_keys=True) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    """Writes every pipeline's YAML, or with ``--check`` reports those that differ from a fresh compile."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a committed YAML is stale")
    parser.add_argument("--spec", default="", help="the dataset spec compiled in (default: the default example)")
    parser.add_argument("--target", default="", help="the KFP backend (pipelines/ct/targets.py; default kfp-2.17, "
                                                      "the committed YAML): kubeflow-1.10, kfp-2.15, kfp-2.16, "
                                                      "kfp-2.17")
    parser.add_argument("--overlay", default="", help="compile for this cluster: an overlay (manifests/overlays/"
                                                       "<name> or a path) whose ConfigMap ct-pipeline-defaults gives "
                                                       "the inputs' defaults and the targets it runs on")
    parser.add_argument("--output", default="", help="write here (default for a cluster: "
                                                      "var/compiled/ct_pipeline.<overlay>.<target>.yaml)")
    args = parser.parse_args(argv)
    from pipelines.ct.targets import DEFAULT_TARGET, deployment, overlays_for

    if args.check and (args.overlay or args.target or args.output):
        parser.error("--check checks the committed YAML only")
    if args.overlay or args.target:
        try:
            overlay = args.overlay or next(iter(overlays_for(args.target)), "")
            if not overlay:
                raise ValueError(f"no overlay of manifests/overlays runs on {args.target}: name one with --overlay")
            chosen = deployment(overlay, args.target)
        except (ValueError, RuntimeError) as error:
            parser.error(str(error))
        output = args.output or os.path.join(REPO_ROOT, "var", "compiled",
                                             f"ct_pipeline.{chosen.overlay}.{chosen.target.name}.yaml")
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        func, _ = pipelines()[0]
        dropped = compile_to(func, output, args.spec, chosen.target.name, chosen.defaults)
        fields = sorted({field for found in dropped.values() for field in found})
        print(f"compiled for overlay {chosen.overlay} on {chosen.target.name} (KFP {chosen.target.kfp_backend}) -> "
              f"{os.path.relpath(output)}; its defaults: "
              + " ".join(f"{k}={v}" for k, v in sorted(chosen.defaults.items()))
              + (f"; dropped what its backend does not know: {', '.join(fields)}" if fields else ""))
        return 0
    if args.output:
        parser.error(f"--output needs --overlay or --target (the committed YAML is the {DEFAULT_TARGET} one, "
                     "with the local defaults)")
    stale = 0
    for func, path in pipelines():
        if not args.check:
            compile_to(func, path, args.spec)
            print(f"compiled {func.name if hasattr(func, 'name') else func} -> {os.path.relpath(path)}")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            fresh = os.path.join(tmp, "fresh.yaml")
            compile_to(func, fresh, args.spec)
            with open(fresh, encoding="utf-8") as handle:
                new = handle.read()
        old = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
        if new != old:
            stale += 1
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                       path, "fresh compile", n=1))
            print(f"\n{os.path.relpath(path)} is stale: run `make compile`")
    fresh_spec = manifest_spec_text(args.spec)
    if not args.check:
        with open(MANIFEST_SPEC, "w", encoding="utf-8") as handle:
            handle.write(fresh_spec)
        print(f"wrote the spec's JSON -> {os.path.relpath(MANIFEST_SPEC)}")
    elif not os.path.exists(MANIFEST_SPEC) or open(MANIFEST_SPEC, encoding="utf-8").read() != fresh_spec:
        stale += 1
        print(f"{os.path.relpath(MANIFEST_SPEC)} is not the spec's JSON: run `make compile`")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())

"""Program of the resolve_baseline image: ``python -m components.resolve_baseline --executor-input JSON``."""

import sys

from components.kfp_io import Executor, run_component
from components.resolve_baseline.resolve import materialize, resolve_from_metadata, resolve_from_registry


def _run(executor: Executor) -> None:
    metadata_uri = executor.param("metadata_uri")
    if metadata_uri:
        pointer = resolve_from_metadata(metadata_uri, executor.param("model_name"), executor.param("registry_uri"),
                                        executor.param("namespace"), executor.param("pipeline_name") or None)
    else:
        pointer = resolve_from_registry(executor.param("registry_uri"), executor.param("model_name"))
    metadata = materialize(pointer, executor.output_path("baseline"))
    metadata["resolved_from"] = "ml-metadata" if metadata_uri else "registry"
    executor.set_metadata("baseline", metadata)
    print(f"[resolve_baseline] production model: {metadata.get('version') or 'none (first model)'}", flush=True)


if __name__ == "__main__":
    sys.exit(run_component("resolve_baseline", _run))

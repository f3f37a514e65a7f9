"""Program of the materialize image: ``python -m components.materialize --executor-input JSON``."""

import sys

from components.feature_store.materialization import materialize_new
from components.kfp_io import ComponentError, Executor, run_component


def _run(executor: Executor) -> None:
    target = executor.param("serving_target")
    if target not in ("local", "kserve"):
        raise ComponentError(f"serving_target must be 'local' or 'kserve', got {target!r}")
    metadata = materialize_new(executor.param("source_uri"), executor.param("feature_repo"))
    if target == "local":
        from components.feature_store.server import ensure_serving

        try:
            state = ensure_serving(executor.param("feature_repo"), executor.param("feature_server_url"))
        except RuntimeError as error:
            raise ComponentError(str(error)) from None
        print(f"[materialize] feature server {'started' if state['started'] else 'answering'} on {state['url']}",
              flush=True)
    metadata["feature_server_url"] = executor.param("feature_server_url")
    executor.set_metadata("features", metadata)


if __name__ == "__main__":
    sys.exit(run_component("materialize", _run))

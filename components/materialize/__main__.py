"""Program of the materialize image: ``python -m components.materialize --executor-input JSON``."""

import sys

from components.kfp_io import Executor, run_component
from components.materialize.materialize import materialize_and_serve


def _run(executor: Executor) -> None:
    executor.set_metadata("features", materialize_and_serve(
        executor.param("source_uri"), executor.param("feature_repo"), executor.param("serving_target"),
        executor.param("feature_server_url"), executor.dataset_spec(),
        fork_server=True))  # this step's process: see components/feature_store/server.py start_serving


if __name__ == "__main__":
    sys.exit(run_component("materialize", _run))

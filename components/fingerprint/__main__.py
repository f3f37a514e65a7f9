"""Program of the fingerprint image: ``python -m components.fingerprint --executor-input JSON``."""

import sys

from components import registry
from components.fingerprint.fingerprint import window_data_version
from components.kfp_io import Executor, run_component


def _run(executor: Executor) -> None:
    version = window_data_version(executor.param("source_uri"), executor.param("train_spans"),
                                  executor.param("test_span"), executor.dataset_spec())
    executor.set_parameter("data_version", version)
    production = registry.production_version(executor.param("registry_uri"), executor.param("model_name"))
    executor.set_parameter("production_version", production)
    print(f"[fingerprint] data version {version}", flush=True)
    print(f"[fingerprint] production {production}", flush=True)


if __name__ == "__main__":
    sys.exit(run_component("fingerprint", _run))

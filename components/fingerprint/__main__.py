"""Program of the fingerprint image: ``python -m components.fingerprint --executor-input JSON``."""

import sys

from components.fingerprint.fingerprint import window_data_version
from components.kfp_io import Executor, run_component


def _run(executor: Executor) -> None:
    version = window_data_version(executor.param("source_uri"), executor.param("train_spans"),
                                  executor.param("test_span"))
    executor.set_parameter("data_version", version)
    print(f"[fingerprint] data version {version}", flush=True)


if __name__ == "__main__":
    sys.exit(run_component("fingerprint", _run))

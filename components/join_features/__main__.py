"""Program of the join_features image: ``python -m components.join_features --executor-input JSON``."""

import sys

from components.join_features.join_features import join_dataset
from components.kfp_io import Executor, run_component


def _run(executor: Executor) -> None:
    metadata = join_dataset(dataset_path=executor.input_path("dataset"),
                            extracted=executor.input_metadata("dataset"),
                            source_uri=executor.param("source_uri"), repo=executor.param("feature_repo"),
                            output_path=executor.output_path("joined"), spec=executor.dataset_spec())
    executor.set_metadata("joined", metadata)


if __name__ == "__main__":
    sys.exit(run_component("join_features", _run))

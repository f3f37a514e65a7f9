"""KFP interface of prepare: dataset in; train, eval and test splits out."""

from kfp import dsl

from components.container_spec import program_spec
from components.images import PodSettings

#: Its pod on a cluster: CPU and memory (request, limit).
POD = PodSettings(cpu=("500m", "1"), memory=("1Gi", "4Gi"),
                  preload=("pandas", "pyarrow.parquet"))


@dsl.container_component
def prepare(
    dataset: dsl.Input[dsl.Dataset],
    dataset_spec: str,
    test_span: str,
    eval_fraction: float,
    train_data: dsl.Output[dsl.Dataset],
    eval_data: dsl.Output[dsl.Dataset],
    test_data: dsl.Output[dsl.Dataset],
):
    """Labels rows by the spec's rule and splits them: test span by time, train/eval by a hash of the split key.

    Args:
        dataset: The validated dataset.
        dataset_spec: The dataset spec (canonical JSON): label rule, features, split key.
        test_span: The span held out as test set.
        eval_fraction: Share of the training spans' rows kept for eval.
        train_data: Training rows (Parquet).
        eval_data: Eval rows (Parquet).
        test_data: Test-span rows (Parquet).
    """
    return program_spec("train", "prepare")

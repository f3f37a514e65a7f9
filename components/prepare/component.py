"""KFP interface of prepare: dataset in; train, eval and test splits out."""

from kfp import dsl

from components.container_spec import program_spec
from components.images import PodSettings

#: Its pod on a cluster: CPU and memory (request, limit).
POD = PodSettings(cpu=("500m", "1"), memory=("1Gi", "4Gi"))


@dsl.container_component
def prepare(
    dataset: dsl.Input[dsl.Dataset],
    test_span: str,
    eval_fraction: float,
    train_data: dsl.Output[dsl.Dataset],
    eval_data: dsl.Output[dsl.Dataset],
    test_data: dsl.Output[dsl.Dataset],
):
    """Labels rows (arrival delay >= 15 min) and splits them: test span by time, train/eval by hash.

    Args:
        dataset: The validated dataset.
        test_span: The span held out as test set.
        eval_fraction: Share of the training spans' rows kept for eval.
        train_data: Training rows (Parquet).
        eval_data: Eval rows (Parquet).
        test_data: Test-span rows (Parquet).
    """
    return program_spec("train", "prepare")

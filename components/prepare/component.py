"""KFP interface of prepare: dataset in; train, eval and test splits out."""

from kfp import dsl

from components.images import image


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
    return dsl.ContainerSpec(
        image=image("train"),
        command=["python", "-m", "components.prepare"],
        args=["--executor-input", "{{$}}"],
    )

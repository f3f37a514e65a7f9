"""KFP interface of train: splits and hyperparameters in; model and training metrics out."""

from kfp import dsl

from components.images import image


@dsl.container_component
def train(
    train_data: dsl.Input[dsl.Dataset],
    eval_data: dsl.Input[dsl.Dataset],
    learning_rate: float,
    max_iter: int,
    max_leaf_nodes: int,
    l2_regularization: float,
    model: dsl.Output[dsl.Model],
    train_metrics: dsl.Output[dsl.Metrics],
    serving_samples: dsl.Output[dsl.Artifact],
):
    """Fits the sklearn pipeline (encoding + HistGradientBoostingClassifier).

    Args:
        train_data: Training rows.
        eval_data: Eval rows, scored for the eval AUC.
        learning_rate: Boosting learning rate.
        max_iter: Boosting iterations.
        max_leaf_nodes: Leaves per tree.
        l2_regularization: L2 penalty on leaf values.
        model: Folder with ``model.joblib`` and ``model.json``.
        train_metrics: AUC on train and eval splits.
        serving_samples: Eval rows with the training runtime's predictions, for infra validation.
    """
    return dsl.ContainerSpec(
        image=image("train"),
        command=["python", "-m", "components.train"],
        args=["--executor-input", "{{$}}"],
    )

"""KFP interface of train: splits and hyperparameters in; model and training metrics out."""

from kfp import dsl

from components.container_spec import program_spec
from components.images import PodSettings

#: Its pod on a cluster: CPU and memory (request, limit).
POD = PodSettings(cpu=("1", "2"), memory=("2Gi", "8Gi"))


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
    return program_spec("train", "train")

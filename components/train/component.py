"""KFP interface of train: splits and hyperparameters in; model and training metrics out."""

from kfp import dsl

from components.container_spec import program_spec
from components.images import MODEL_MODULES, PodSettings

#: Its pod on a cluster: CPU and memory (request, limit).
POD = PodSettings(cpu=("1", "2"), memory=("2Gi", "8Gi"),
                  preload=(*MODEL_MODULES, "joblib", "pandas"))


@dsl.container_component
def train(
    train_data: dsl.Input[dsl.Dataset],
    eval_data: dsl.Input[dsl.Dataset],
    dataset_spec: str,
    learning_rate: float,
    max_iter: int,
    max_leaf_nodes: int,
    l2_regularization: float,
    model: dsl.Output[dsl.Model],
    train_metrics: dsl.Output[dsl.Metrics],
    serving_samples: dsl.Output[dsl.Artifact],
):
    """Fits the sklearn pipeline the spec declares (preprocessing by feature type + its estimator).

    Args:
        train_data: Training rows.
        eval_data: Eval rows, scored for the eval metric.
        dataset_spec: The dataset spec (canonical JSON): features, label, estimator and hyperparameters.
        learning_rate: Overrides the hyperparameter of that name when the spec lists it among pipeline_parameters.
        max_iter: Likewise.
        max_leaf_nodes: Likewise.
        l2_regularization: Likewise.
        model: Folder with ``model.joblib`` and ``model.json``.
        train_metrics: The primary metric on train and eval splits.
        serving_samples: Eval rows with the training runtime's predictions, for infra validation.
    """
    return program_spec("train", "train")

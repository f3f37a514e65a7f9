"""KFP interface of validate_model: evaluation in; blessing out."""

from kfp import dsl

from components.images import image


@dsl.container_component
def validate_model(
    evaluation: dsl.Input[dsl.Artifact],
    min_auc: float,
    max_auc_drop: float,
    blessing: dsl.Output[dsl.Artifact],
    blessed: dsl.OutputPath(bool),
):
    """Blesses the candidate if its AUC reaches ``min_auc`` and drops at most ``max_auc_drop`` below production.

    Args:
        evaluation: Candidate and baseline metrics on the same test span.
        min_auc: Value threshold on the candidate's test AUC.
        max_auc_drop: Change threshold: allowed AUC loss against the production model.
        blessing: The decision with its reasons (JSON and metadata).
        blessed: The decision, for the pipeline's condition.
    """
    return dsl.ContainerSpec(
        image=image("train"),
        command=["python", "-m", "components.validate_model"],
        args=["--executor-input", "{{$}}"],
    )

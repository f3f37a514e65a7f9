"""KFP interface of validate_model: evaluation in; blessing out."""

from kfp import dsl

from components.container_spec import program_spec
from components.images import PodSettings

#: Its pod on a cluster: CPU and memory (request, limit).
POD = PodSettings(cpu=("100m", "500m"), memory=("256Mi", "1Gi"))


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
    return program_spec("train", "validate_model")

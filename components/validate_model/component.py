"""KFP interface of validate_model: evaluation in; blessing out."""

from kfp import dsl

from components.container_spec import program_spec
from components.images import PodSettings

#: Its pod on a cluster: CPU and memory (request, limit).
POD = PodSettings(cpu=("100m", "500m"), memory=("256Mi", "1Gi"))


@dsl.container_component
def validate_model(
    evaluation: dsl.Input[dsl.Artifact],
    dataset_spec: str,
    metric_threshold: str,
    metric_max_change: str,
    blessing: dsl.Output[dsl.Artifact],
    blessed: dsl.OutputPath(bool),
):
    """Blesses the candidate if its primary metric reaches the threshold and is at most so much worse than production.

    Args:
        evaluation: Candidate and baseline metrics on the same test span.
        dataset_spec: The dataset spec (canonical JSON): primary metric, direction and thresholds.
        metric_threshold: Value threshold on the candidate's test metric ("": the spec's ``metric.threshold``).
        metric_max_change: Change threshold: how much worse than production the candidate may be on the
            same test span ("": the spec's ``metric.max_change``).
        blessing: The decision with its reasons (JSON and metadata).
        blessed: The decision, for the pipeline's condition.
    """
    return program_spec("train", "validate_model")

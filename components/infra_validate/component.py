"""KFP interface of infra_validate: candidate and sample rows in; infra blessing out."""

from kfp import dsl

from components.container_spec import program_spec
from components.images import MODEL_MODULES, PodSettings

#: Its pod on a cluster: CPU and memory (request, limit).
POD = PodSettings(cpu=("500m", "1"), memory=("1Gi", "2Gi"),
                  # Locally, forked from its warm runtime, it forks the model server with these imported.
                  preload=("components.model_server.server", *MODEL_MODULES))


@dsl.container_component
def infra_validate(
    model: dsl.Input[dsl.Model],
    serving_samples: dsl.Input[dsl.Artifact],
    max_p99_ms: float,
    requests: int,
    infra_blessing: dsl.Output[dsl.Artifact],
):
    """Loads the candidate in the serving runtime and checks its predictions and latency.

    Args:
        model: The candidate model.
        serving_samples: Eval rows with the training runtime's predictions (from train).
        max_p99_ms: Bound on p99 latency of single-row requests, in milliseconds.
        requests: Number of single-row requests timed.
        infra_blessing: The decision with reasons and measurements.
    """
    return program_spec("serve", "infra_validate")

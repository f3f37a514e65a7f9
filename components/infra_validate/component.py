"""KFP interface of infra_validate: candidate and sample rows in; infra blessing out."""

from kfp import dsl

from components.images import image


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
    return dsl.ContainerSpec(
        image=image("serve"),
        command=["python", "-m", "components.infra_validate"],
        args=["--executor-input", "{{$}}"],
    )

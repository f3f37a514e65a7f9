"""KFP interface of evaluate: candidate, baseline and test span in; metrics out."""

from kfp import dsl

from components.container_spec import program_spec
from components.images import PodSettings

#: Its pod on a cluster: CPU and memory (request, limit).
POD = PodSettings(cpu=("500m", "1"), memory=("1Gi", "4Gi"),
                  preload=("sklearn.metrics", "joblib", "pandas"))


@dsl.container_component
def evaluate(
    model: dsl.Input[dsl.Model],
    baseline: dsl.Input[dsl.Model],
    test_data: dsl.Input[dsl.Dataset],
    dataset_spec: str,
    metrics: dsl.Output[dsl.Metrics],
    classification_metrics: dsl.Output[dsl.ClassificationMetrics],
    evaluation: dsl.Output[dsl.Artifact],
):
    """Scores the candidate (and the baseline, if any) on the test span, overall and per slice.

    Args:
        model: The candidate model.
        baseline: The production model from resolve_baseline (an empty folder when none).
        test_data: The test span's rows.
        dataset_spec: The dataset spec (canonical JSON): task, label, slices, class names.
        metrics: The candidate's scalar metrics (dashboard scalars).
        classification_metrics: ROC curve and confusion matrix (dashboard plots; empty for a regression).
        evaluation: JSON with candidate and baseline metrics, overall and per slice.
    """
    return program_spec("train", "evaluate")

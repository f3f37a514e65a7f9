"""The monitor's window statistics on Beam's DirectRunner (two processes) equal the in-process ones."""

from conftest import flights

from components.dataset_spec import DatasetSpec
from components.monitor import analysis
from components.paths import REPO_ROOT

FLIGHTS = DatasetSpec.load(f"{REPO_ROOT}/pipelines/examples/flights/spec.toml")

MULTI_PROCESS = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]


def _summary(statistics):
    found = {}
    for feature in statistics.datasets[0].features:
        if feature.HasField("num_stats"):
            s = feature.num_stats
            found[".".join(feature.path.step)] = (s.common_stats.num_non_missing, s.common_stats.num_missing,
                                                  round(s.mean, 9), round(s.min, 9), round(s.max, 9))
        else:
            s = feature.string_stats
            found[".".join(feature.path.step)] = (s.common_stats.num_non_missing, s.common_stats.num_missing,
                                                  s.unique, tuple((v.value, v.frequency) for v in s.top_values))
    return statistics.datasets[0].num_examples, found


def test_window_statistics_on_beam_equal_in_process():
    frame = flights(3000, seed=4)
    frame.loc[frame.index[::17], "temp"] = None
    in_process = analysis.statistics(frame, FLIGHTS)
    on_beam = analysis.statistics(frame, FLIGHTS, MULTI_PROCESS)
    assert _summary(on_beam) == _summary(in_process)
    assert _summary(in_process)[0] == 3000

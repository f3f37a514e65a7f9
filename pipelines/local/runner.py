"""Runs a compiled pipeline YAML with kfp.local, each task in its runtime's environment.

kfp.local does the orchestration (DAG, conditions, placeholders, caching). Its
``SubprocessRunner`` refuses container components, so this module supplies
only the part that executes one task: the container's command, run with the
Python interpreter of the local environment built from the task image's lock
(``.venvs/<runtime>``) instead of inside a container.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from typing import Any, Optional

from components.images import runtime_env, runtime_of
from components.paths import REPO_ROOT
from components.run_folder import (
    CACHED_DIR,
    KFP_CACHE_DIR,
    RUN_INFO,
    TASK_INPUT,
    TASK_LOG,
    TASK_TIMING,
    read_json,
    run_id_of,
    task_folders,
    write_task_record,
)
from pipelines.ct.spec import compiled_spec, steps, yaml_documents
from pipelines.local import kfp_local_compat
from pipelines.local.backend_contract import BackendContract, ContractError

DEFAULT_VENVS = os.path.join(REPO_ROOT, ".venvs")


def runtime_python(runtime: str, venvs_dir: str = DEFAULT_VENVS) -> str:
    """Returns the interpreter of a runtime's local environment.

    Raises:
        FileNotFoundError: The environment was not built (``make setup`` builds it).
    """
    python = os.path.join(venvs_dir, runtime, "bin", "python")
    if not os.path.exists(python):
        raise FileNotFoundError(
            f"no local environment for runtime {runtime!r} at {python}; run `make setup` first"
        )
    return python


def _executor_input(full_command: list[str]) -> Optional[dict[str, Any]]:
    """The executor input passed on the command line, if any."""
    for index, arg in enumerate(full_command[:-1]):
        if arg == "--executor-input":
            try:
                return json.loads(full_command[index + 1])
            except ValueError:
                return None
    return None


class RuntimeTaskHandler:
    """Executes a container task's command in the local environment of its image's runtime.

    Implements kfp.local's task handler interface (``run() -> Status``).
    """

    def __init__(self, image: str, full_command: list[str], pipeline_root: str, runner: Any,
                 env_vars: Optional[dict[str, str]] = None, venvs_dir: str = DEFAULT_VENVS,
                 extra_env: Optional[dict[str, str]] = None, contract: Optional[BackendContract] = None,
                 warm: Optional[Any] = None):
        """Args follow kfp.local's ITaskHandler.

        ``venvs_dir`` holds one venv per runtime; with ``contract`` the task meets the KFP
        backend's contract (pipelines/local/backend_contract.py); ``warm``: the run's warm servers
        (``pipelines.local.warm.WarmPool``), from which the task forks instead of starting afresh.
        """
        self.image = image
        self.contract = contract
        self.warm = warm
        self.full_command = list(full_command)
        self.pipeline_root = pipeline_root
        self.env_vars = {**(env_vars or {}), **(extra_env or {})}
        self.venvs_dir = venvs_dir

    def command(self) -> list[str]:
        """The command to run: the container's, with ``python`` bound to the runtime's venv."""
        python = runtime_python(runtime_of(self.image), self.venvs_dir)
        command = list(self.full_command)
        if command and command[0] in ("python", "python3"):
            command[0] = python
        return command

    def environment(self) -> dict[str, str]:
        """The task's environment: the caller's, the runtime venv first on PATH, the repo importable."""
        bin_dir = os.path.join(self.venvs_dir, runtime_of(self.image), "bin")
        env = {**os.environ, **self.env_vars}
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
        env["VIRTUAL_ENV"] = os.path.dirname(bin_dir)
        env["PYTHONPATH"] = REPO_ROOT
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("PYTHONHOME", None)
        env.update(runtime_env(runtime_of(self.image)))
        return env

    def _execute(self, emit) -> int:
        """Runs the program: forked from its runtime's warm server when there is one, else as a fresh process."""
        command = self.command()
        executor_input = _executor_input(self.full_command) or {}
        task = os.path.basename(os.path.dirname(executor_input.get("outputs", {}).get("outputFile", "")))
        # A task that started its own runtime's server for the tasks downstream of it runs beside its imports.
        beside = bool(self.warm is not None and task and hasattr(self.warm, "task_starts")
                      and self.warm.task_starts(task))
        plan = getattr(self.warm, "plan", None) or {}
        declared = plan[task][1] if task in plan else (_preloads(command[2]) if command[1:2] == ["-m"] else ())
        wanted = self.warm is not None and command[1:2] == ["-m"] and declared != () and not beside
        server = self.warm.get(runtime_of(self.image)) if wanted else None
        if server is not None:
            reason = server.failure() or server.error or "its server exited"
            if server.alive:
                try:
                    return server.run(command[2], command[3:], self.environment(), REPO_ROOT, emit,
                                      then_import=self.warm.later_imports(server.runtime, task or None))
                except OSError as error:
                    reason = str(error)
            emit(f"[warm] the {server.runtime} runtime is not warm ({reason}): the task runs as a fresh process\n")
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              text=True, bufsize=1, env=self.environment(), cwd=REPO_ROOT) as process:
            for line in process.stdout:
                emit(line)
            return process.wait()

    def run(self):
        """Runs the task, streaming its output and keeping it in the task's ``task.log``."""
        from kfp.local import status

        executor_input = _executor_input(self.full_command)
        task_dir = os.path.dirname(executor_input["outputs"]["outputFile"]) if executor_input else None
        log = None
        if task_dir:
            os.makedirs(task_dir, exist_ok=True)
            log = open(os.path.join(task_dir, TASK_LOG), "w", encoding="utf-8")

        def emit(line: str) -> None:
            print(line, end="", flush=True)
            if log:
                log.write(line)

        started = time.time()
        try:
            with _contract_around(self.contract, executor_input, self.image, emit) as outcome:
                if not outcome.get("refused"):  # a pod that would not start: the program never runs
                    outcome["exit_code"] = self._execute(emit)
            return_code = outcome["exit_code"]
        finally:
            if log:
                log.close()
        _record_task(self.image, self.full_command, started, time.time(), return_code)
        return status.Status.SUCCESS if return_code == 0 else status.Status.FAILURE


@contextlib.contextmanager
def _contract_around(contract: Optional[BackendContract], executor_input: Optional[dict[str, Any]], image: str,
                     emit) -> Iterator[dict[str, int]]:
    """Wraps a task's execution in the backend's driver (before) and launcher (after) parts.

    The block sets ``outcome["exit_code"]``; a backend error (a null metadata value, say)
    turns a successful exit into a failure, with the backend's message in the task log.
    """
    outcome = {"exit_code": 1}
    if contract is None:
        yield outcome
        return
    if executor_input is None:
        raise ContractError("the backend contract needs the task's executor input as `--executor-input {{$}}` "
                            "on its command line (every component of this project passes it so)")
    refusal = contract.refusal(executor_input)
    if refusal:  # on a cluster the pod would wait for ever: here the task fails with the kubelet's reason
        emit(f"[kfp backend] the task's pod does not start: {refusal}\n")
        outcome["refused"] = True
        yield outcome
        return
    execution_id = contract.before_task(executor_input, image)
    try:
        yield outcome
    finally:
        error = contract.after_task(execution_id, executor_input, outcome["exit_code"] == 0)
        if error and outcome["exit_code"] == 0:
            emit(f"[kfp backend] {error}\n")
            outcome["exit_code"] = 1


def _record_task(image: str, full_command: list[str], started: float, ended: float, return_code: int,
                 container: bool = False) -> None:
    """Keeps a task's executor input, timing and peak memory in its folder (local and container runs alike)."""
    executor_input = _executor_input(full_command)
    if not executor_input:
        return
    task_dir = os.path.dirname(executor_input["outputs"]["outputFile"])
    # The program's own peak (its model server processes aside), as it recorded it on exit.
    max_rss_mb = (read_json(os.path.join(task_dir, "exit_status.json")) or {}).get("peak_rss_mb")
    write_task_record(task_dir, executor_input, {
        "runtime": runtime_of(image), "image": image, "started": started, "ended": ended,
        "seconds": round(ended - started, 3), "exit_code": return_code, "cached": False, "container": container,
        "max_rss_mb": max_rss_mb})


@contextlib.contextmanager
def container_task_records(contract: Optional[BackendContract] = None) -> Iterator[None]:
    """Makes kfp.local's DockerRunner keep each task's executor input and timing, like local runs.

    Swaps the handler kfp.local uses for DockerRunner for a subclass that records
    them around the container run, and puts it back afterwards.
    """
    from kfp.local import status

    def recording(original: type) -> type:
        class RecordingDockerTaskHandler(original):
            def run(self):
                import docker

                started = time.time()
                with _contract_around(contract, _executor_input(self.full_command), self.image,
                                      lambda line: print(line, end="", flush=True)) as outcome:
                    if not outcome.get("refused"):  # a pod that would not start: the container never runs
                        try:
                            result = super().run()
                        except docker.errors.APIError as error:
                            # The program left its exit code in the task folder.
                            if not kfp_local_compat.is_vanished_container(error):
                                raise
                            result = _exit_status_of(self.full_command)
                        outcome["exit_code"] = 0 if result == status.Status.SUCCESS else 1
                _record_task(self.image, self.full_command, started, time.time(), outcome["exit_code"],
                             container=True)
                return status.Status.SUCCESS if outcome["exit_code"] == 0 else status.Status.FAILURE

        return RecordingDockerTaskHandler

    with kfp_local_compat.docker_handler(recording):
        yield


def _exit_status_of(full_command: list[str]):
    """The status a component program recorded in its task folder (failure when there is none)."""
    from kfp.local import status

    executor_input = _executor_input(full_command)
    path = os.path.join(os.path.dirname(executor_input["outputs"]["outputFile"]), "exit_status.json") \
        if executor_input else ""
    if not os.path.exists(path):
        return status.Status.FAILURE
    with open(path, encoding="utf-8") as handle:
        return status.Status.SUCCESS if json.load(handle)["exit_code"] == 0 else status.Status.FAILURE


def docker_runner(mount_dirs: list[str]):
    """A kfp.local DockerRunner for this project's images.

    Containers run as the invoking user (files in the run folder stay the user's)
    on the host network, with ``mount_dirs`` (source data, registry, metadata)
    bound at the same paths.
    """
    import docker
    from kfp import local

    mounts = [docker.types.Mount(target=os.path.abspath(d), source=os.path.abspath(d), type="bind")
              for d in mount_dirs]
    return local.DockerRunner(user=f"{os.getuid()}:{os.getgid()}", network_mode="host", mounts=mounts)


@contextlib.contextmanager
def runtime_task_handler(venvs_dir: str = DEFAULT_VENVS, extra_env: Optional[dict[str, str]] = None,
                         contract: Optional[BackendContract] = None,
                         warm: Optional[Any] = None) -> Iterator[None]:
    """Makes kfp.local execute tasks with RuntimeTaskHandler for the duration of the block.

    kfp.local picks a task handler from a table keyed by the runner's exact type
    and offers no registration hook, so the handler it uses for
    ``SubprocessRunner`` is swapped for ours, and put back afterwards.
    """
    def factory(**kwargs):
        return RuntimeTaskHandler(venvs_dir=venvs_dir, extra_env=extra_env, contract=contract, warm=warm, **kwargs)

    with kfp_local_compat.subprocess_handler(factory):
        yield


def _record_cached_task(run_dir: str, cache_root: str, task: str, key_prefix: str
                        ) -> Optional[tuple[dict[str, Any], dict[str, Any], Optional[str]]]:
    """Gives a task served from kfp.local's cache a folder like the others, marked cached.

    The folder holds the cached outputs as an executor output and points at the
    task folder that produced them, so summaries and lineage treat cached and
    executed tasks alike.

    Returns:
        (cached outputs as an executor output, the executor input, the image), or None
        when the cache entry is not found.
    """
    entry = kfp_local_compat.read_cache_entry(cache_root, key_prefix)
    if entry is None:
        return None
    found, parameters = entry
    artifacts = {name: {"artifacts": [artifact]} for name, artifact in found.items()}
    origin = next((os.path.dirname(artifact["uri"]) for artifact in found.values()), None)
    task_dir = os.path.join(run_dir, CACHED_DIR, task)
    os.makedirs(task_dir, exist_ok=True)
    with open(os.path.join(task_dir, "executor_output.json"), "w", encoding="utf-8") as handle:
        json.dump({"artifacts": artifacts, "parameterValues": parameters}, handle, indent=2)
    timing = {"cached": True, "cached_from": origin, "seconds": 0.0, "exit_code": 0, "runtime": None,
              "started": time.time(), "ended": time.time()}
    if origin and os.path.exists(os.path.join(origin, TASK_TIMING)):
        with open(os.path.join(origin, TASK_TIMING), encoding="utf-8") as handle:
            original = json.load(handle)
        timing.update(runtime=original.get("runtime"), image=original.get("image"))
        if os.path.exists(os.path.join(origin, TASK_INPUT)):
            shutil.copy(os.path.join(origin, TASK_INPUT), os.path.join(task_dir, TASK_INPUT))
    with open(os.path.join(task_dir, TASK_TIMING), "w", encoding="utf-8") as handle:
        json.dump(timing, handle)
    executor_input = read_json(os.path.join(task_dir, TASK_INPUT)) or {}
    return ({"artifacts": artifacts, "parameterValues": parameters}, executor_input, timing.get("image"))


@functools.cache
def _preloads(program: str) -> Optional[tuple[str, ...]]:
    """What a step's program declares to import (``PodSettings.preload``); None for a program that is no step.

    A step that declares nothing starts afresh in a few tens of milliseconds: it need not wait for
    its runtime's server to finish importing what the other steps need.
    """
    import importlib

    try:
        return tuple(importlib.import_module(f"{program}.component").POD.preload)
    except (ImportError, AttributeError):
        return None


def _executor_programs(pipeline_yaml: str) -> dict[str, tuple[str, str]]:
    """Task name -> (runtime, program) of each container task of a compiled pipeline, in nested DAGs too."""
    spec = compiled_spec(pipeline_yaml)
    executors = spec["deploymentSpec"]["executors"]
    programs = {}
    for dag in [spec["root"].get("dag") or {}, *((c.get("dag") or {}) for c in spec["components"].values())]:
        for name, task in (dag.get("tasks") or {}).items():
            label = spec["components"][task["componentRef"]["name"]].get("executorLabel")
            container = executors.get(label, {}).get("container") if label else None
            if container:
                programs[name] = (runtime_of(container["image"]), (container.get("command") or [""])[-1])
    return programs


def artifact_downstream(pipeline_yaml: str) -> dict[str, set[str]]:
    """Per cacheable container task that writes artifacts: the container tasks downstream of it, in nested DAGs too.

    A task inside a DAG task (a condition, say) depends on what that DAG task depends on; a
    dependency on a DAG task is one on every task inside it.
    """
    spec = compiled_spec(pipeline_yaml)
    components = spec["components"]
    upstream: dict[str, set[str]] = {}  # container task -> the task names it depends on
    members: dict[str, set[str]] = {}  # DAG task -> the container tasks inside it
    writes: set[str] = set()

    def walk(dag: dict, inherited: set[str]) -> set[str]:
        inside = set()
        for name, task in (dag.get("tasks") or {}).items():
            component = components[task["componentRef"]["name"]]
            depends = inherited | set(task.get("dependentTasks") or [])
            if "dag" in component:
                members[name] = walk(component["dag"], depends)
                inside |= members[name]
            else:
                upstream[name] = depends
                inside.add(name)
                # Only a task the cache could have served tells, by running, that its inputs are new:
                # a never-cached one (materialize, deploy) runs every time.
                if (component.get("outputDefinitions") or {}).get("artifacts") and \
                        (task.get("cachingOptions") or {}).get("enableCache"):
                    writes.add(name)
        return inside

    walk(spec["root"].get("dag") or {}, set())
    direct = {task: set().union(set(), *(members.get(d, {d}) for d in deps)) for task, deps in upstream.items()}
    downstream: dict[str, set[str]] = {}
    for task in writes:
        found, frontier = set(), {task}
        while frontier:
            frontier = {t for t, deps in direct.items() if deps & frontier} - found
            found |= frontier
        downstream[task] = found
    return downstream


@functools.cache
def _opens_feature_store(program: str) -> bool:
    """Whether a step opens the Feast repository (``PodSettings.feature_store``)."""
    import importlib

    try:
        return bool(importlib.import_module(f"{program}.component").POD.feature_store)
    except (ImportError, AttributeError):
        return False


def spec_declares_feature_views(arguments: dict[str, Any]) -> bool:
    """Whether the run's dataset spec (its ``dataset_spec`` argument) declares feature views; True when unknown."""
    text = arguments.get("dataset_spec")
    if not text:
        return True
    try:
        return bool(json.loads(text)["spec"].get("feature_views"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return True


def warm_plan(pipeline_yaml: str, feature_views: bool = True) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Task name -> (runtime, the modules its step declares: ``PodSettings.preload``), in the order the run needs them.

    ``feature_views``: whether the run's spec declares any; without, the steps that open the feature
    store pass the spans through or have nothing to materialize, and need none of Feast.
    """
    plan = {}
    programs = _executor_programs(pipeline_yaml)
    order = {step.name: index for index, step in enumerate(steps(pipeline_yaml))}  # dependencies first
    for name in sorted(programs, key=lambda task: (order.get(task, len(order)), task)):
        runtime, program = programs[name]
        declared = _preloads(program) if program.startswith("components.") else None
        if declared is not None:
            plan[name] = (runtime, () if not feature_views and _opens_feature_store(program) else declared)
    return plan


def warm_preloads(pipeline_yaml: str, feature_views: bool = True) -> dict[str, list[str]]:
    """Runtime -> the modules its tasks import (each step's ``PodSettings.preload``), for the pipeline's executors."""
    return _runtime_preloads(warm_plan(pipeline_yaml, feature_views))


def _runtime_preloads(plan: dict[str, tuple[str, tuple[str, ...]]]) -> dict[str, list[str]]:
    preloads: dict[str, list[str]] = {}
    for runtime, declared in plan.values():
        modules = preloads.setdefault(runtime, [])
        modules += [m for m in declared if m not in modules]
    return {runtime: modules for runtime, modules in preloads.items() if modules}


def warm_pool(pipeline_yaml: str, venvs_dir: str, extra_env: Optional[dict[str, str]] = None,
              passed_over=tuple, feature_views: bool = True):
    """The run's warm servers (pipelines/local/warm.py), each started by the first task of its runtime that runs.

    ``passed_over``: the names of the tasks kfp.local served from its cache so far (their imports are not needed);
    ``feature_views``: see ``warm_plan``.
    """
    import tempfile

    from pipelines.local import warm

    env = {**os.environ, **(extra_env or {}), "PYTHONPATH": REPO_ROOT, "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONHOME", None)
    # Unix socket paths are short (107 bytes): a folder of its own under the system's temporary one.
    folder = os.path.join(tempfile.gettempdir(), f"kfp-ct-warm-{os.getpid()}-{time.monotonic_ns()}")
    plan = warm_plan(pipeline_yaml, feature_views)
    return warm.WarmPool(_runtime_preloads(plan), lambda runtime: runtime_python(runtime, venvs_dir), folder, env,
                         log=lambda line: print(line, flush=True), plan=plan,
                         passed_over=passed_over, downstream=artifact_downstream(pipeline_yaml))


def load_pipeline(pipeline_yaml: str):
    """``kfp.components.load_component_from_file`` of a compiled pipeline, its YAML read with libyaml's parser.

    kfp 2.17 reads it with PyYAML's pure-Python parser (``kfp/dsl/structures.py load_documents_from_yaml``:
    0.08 s a run for the 90 KB spec, cached reruns included; libyaml 0.008 s); this follows kfp's
    ``ComponentSpec.from_yaml_documents`` for an IR YAML: the same ``ComponentSpec`` (tested).
    """
    from kfp import components
    from kfp.dsl import structures, yaml_component

    with open(pipeline_yaml, encoding="utf-8") as handle:
        text = handle.read()
    documents = yaml_documents(text)  # its own copy: from_ir_dicts may change what it reads
    if len(documents) not in (1, 2) or "implementation" in documents[0]:  # not one compiled v2 pipeline: kfp's way
        return components.load_component_from_text(text)
    spec = structures.ComponentSpec.from_ir_dicts(documents[0], documents[1] if len(documents) == 2 else {})
    if not spec.description and "# Description: " in text:
        # kfp's extract_description: the compiler's header comment, its third line and those continuing it.
        lines = text.splitlines()
        description, index = lines[2], 3
        while lines[index].startswith("#             "):
            description += "\n" + lines[index][len("#             ") + 1:]
            index += 1
        spec.description = description[len("# Description: "):]
    return yaml_component.YamlComponent(component_spec=spec, component_yaml=text)


def run_pipeline_file(pipeline_yaml: str, arguments: dict[str, Any], run_dir: str,
                      venvs_dir: str = DEFAULT_VENVS, enable_caching: bool = False,
                      cache_root: Optional[str] = None, extra_env: Optional[dict[str, str]] = None,
                      run_info: Optional[dict[str, Any]] = None,
                      containers: Optional[list[str]] = None,
                      backend_contract_store: Optional[str] = None,
                      pod_refusals: Optional[dict[str, list[str]]] = None, warm: bool = True) -> bool:
    """Runs a compiled pipeline YAML locally; every task's outputs and logs land under ``run_dir``.

    Args:
        pipeline_yaml: Path of the compiled pipeline spec.
        arguments: Pipeline parameters.
        run_dir: The run's folder (kfp.local's pipeline root).
        venvs_dir: Folder with one virtual environment per runtime.
        enable_caching: Reuse outputs of identical earlier tasks (kfp.local's cache).
        cache_root: Where cache entries live (shared across runs); default inside ``run_dir``.
        extra_env: Environment variables added to every task.
        run_info: Facts about the run kept in ``run.json`` (trigger, git sha, ...).
        containers: Run every task in its image through kfp.local's DockerRunner (a
            Docker API: Docker, or podman's service), with these folders mounted;
            None runs tasks in the local runtime environments.
        backend_contract_store: Run in backend-contract mode, the KFP backend's MLMD
            records going to this store (pipelines/local/backend_contract.py); None for plain kfp.local.
        pod_refusals: Under the backend contract, task name -> why a target's backend would not
            start its pod (``pipelines.ct.pods.pod_refusals``): those tasks fail before they run.
        warm: Fork each task from a warm server of its runtime (pipelines/local/warm.py) instead of
            starting a fresh interpreter; local runtimes only.

    Returns:
        True when every task that ran succeeded.
    """
    kfp_local_compat.import_kfp()
    from kfp import local

    problems = kfp_local_compat.problems()
    if problems:
        raise RuntimeError("the local runner does not fit this kfp: " + "; ".join(problems))
    os.makedirs(run_dir, exist_ok=True)
    cache_root = os.path.abspath(cache_root or os.path.join(run_dir, KFP_CACHE_DIR))
    info = {**(run_info or {}), "pipeline_yaml": os.path.abspath(pipeline_yaml), "parameters": arguments,
            "caching": enable_caching, "started": time.time(), "status": "RUNNING"}
    _write_run_info(run_dir, info)
    runner = docker_runner(containers) if containers is not None else local.SubprocessRunner(use_venv=False)
    info["executor"] = "kfp.local DockerRunner" if containers is not None else "kfp.local + runtime environments"
    local.init(runner=runner, pipeline_root=run_dir, raise_on_error=False, enable_caching=enable_caching,
               cache_root=cache_root)
    pipeline = load_pipeline(pipeline_yaml)
    contract = None
    if backend_contract_store:
        contract = BackendContract(backend_contract_store, pipeline.name, run_dir, arguments,
                                   runtime_python("data", venvs_dir), REPO_ROOT, pod_refusals)
        info["executor"] += " under the KFP v2 backend contract (stand-in)"
        info["backend_contract_store"] = backend_contract_store
    # CPU and memory settings are for clusters; kfp.local warns once per task that it ignores them.
    warnings.filterwarnings("ignore", message=".*have no effect in the current local runner.*")
    hits = kfp_local_compat.CacheHits()
    root_logger = logging.getLogger()
    level = root_logger.level
    root_logger.addHandler(hits)
    root_logger.setLevel(min(level, logging.INFO))  # kfp.local reports cache hits at INFO
    task = None
    pool = (warm_pool(pipeline_yaml, venvs_dir, extra_env, passed_over=lambda: [name for name, _ in hits.hits],
                      feature_views=spec_declares_feature_views(arguments))
            if containers is None and warm else None)
    try:
        handler = (container_task_records(contract) if containers is not None
                   else runtime_task_handler(venvs_dir, extra_env, contract, pool))
        with handler:
            task = pipeline(**arguments)
    finally:
        if pool is not None:
            info["warm_runtimes"] = sorted(pool.servers)
            pool.stop()
        root_logger.removeHandler(hits)
        root_logger.setLevel(level)
        for task_name, key in hits.hits:
            cached = _record_cached_task(run_dir, cache_root, task_name, key)
            if contract is not None and cached is not None:
                contract.cached(contract.run_id or run_id_of(run_dir), task_name, cached[1], cached[2] or "", cached[0])
        failed = _failed_tasks(run_dir)
        info.update(ended=time.time(), cached_tasks=[name for name, _ in hits.hits], failed_tasks=failed)
        if contract is not None:
            contract.close(task is not None and not failed)
    ok = task is not None and not failed
    info["status"] = "COMPLETE" if ok else "FAILED"
    _write_run_info(run_dir, info)
    return ok



def _write_run_info(run_dir: str, info: dict[str, Any]) -> None:
    with open(os.path.join(run_dir, RUN_INFO), "w", encoding="utf-8") as handle:
        json.dump(info, handle, indent=2, default=str)


def _failed_tasks(run_dir: str) -> list[str]:
    return [name for name, folder in task_folders(run_dir).items()
            if read_json(os.path.join(folder, TASK_TIMING))["exit_code"] != 0]


def main(argv: Optional[list[str]] = None) -> int:
    """Command line: run a compiled pipeline YAML with parameters given as KEY=VALUE."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pipelines.local.runner", description=__doc__)
    parser.add_argument("pipeline_yaml")
    parser.add_argument("run_dir")
    parser.add_argument("params", nargs="*", help="pipeline parameters as KEY=VALUE (of the YAML's types)")
    parser.add_argument("--cache", action="store_true", help="enable kfp.local's task cache")
    args = parser.parse_args(argv)
    from pipelines.ct.spec import parse_params, pipeline_parameters

    try:
        params = parse_params(args.params, pipeline_parameters(args.pipeline_yaml))
    except ValueError as error:
        parser.error(str(error))
    return 0 if run_pipeline_file(args.pipeline_yaml, params, args.run_dir, enable_caching=args.cache) else 1


if __name__ == "__main__":
    sys.exit(main())

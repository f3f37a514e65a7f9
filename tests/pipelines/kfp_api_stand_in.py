"""A STAND-IN for the Kubeflow Pipelines API server's v2beta1 REST API (no KFP server runs here).

Only what pipeline delivery uses, served over real HTTP so that ``kfp.Client`` and its generated
``kfp_server_api`` serialize every request as they would against a cluster. Behaviour follows
kubeflow/pipelines 2.5.0: the grpc-gateway's snake_case JSON; ``backend/src/apiserver/server/
pipeline_upload_server.go`` (an uploaded pipeline gets a first version of the same name);
``backend/src/apiserver/template/v2_template.go`` ``validatePipelineJobInputs`` (runtime
parameters must be declared by the pipeline and of its types; error 400 "Invalid input error");
multi-user mode refuses to list or create experiments without a namespace.
"""

from __future__ import annotations

import itertools
import json
import threading
import urllib.parse
from email.parser import BytesParser
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import yaml

_TYPE_CHECKS = {"NUMBER_DOUBLE": (int, float), "NUMBER_INTEGER": (int, float), "STRING": (str,),
                "BOOLEAN": (bool,), "LIST": (list,), "STRUCT": (dict,)}


class InvalidInputError(Exception):
    """A request the API server refuses with 400."""


class KfpApiStandIn:
    """State of the stand-in server: pipelines, versions, experiments, recurring runs, requests seen."""

    def __init__(self, multi_user: bool = False, tag_name: str = "2.17.0"):
        """Args: ``multi_user`` and ``tag_name`` (the backend's release) as the healthz endpoint reports them."""
        self.multi_user = multi_user
        self.tag_name = tag_name
        self.pipelines: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, dict[str, Any]] = {}
        self.experiments: dict[str, dict[str, Any]] = {}
        self.recurring_runs: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        #: A run reports RUNNING to this many reads, then SUCCEEDED (or ``final_state``).
        self.polls_until_done = 2
        self.final_state = "SUCCEEDED"
        self.requests: list[tuple[str, str]] = []
        self._ids = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.host = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> KfpApiStandIn:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _new_id(self, kind: str) -> str:
        return f"{kind}-{next(self._ids)}"

    # ----- API -----
    def _filter_name(self, query: dict[str, list[str]]) -> str | None:
        if "filter" not in query:
            return None
        predicates = json.loads(query["filter"][0])["predicates"]
        return next(p.get("stringValue", p.get("string_value")) for p in predicates if p["key"] == "display_name")

    def _upload(self, query, files, pipeline_id=None) -> dict[str, Any]:
        spec = next(yaml.safe_load_all(files["uploadfile"]))
        if "pipelineInfo" not in spec or "root" not in spec:
            raise InvalidInputError("Failed to upload pipeline: the file is not a compiled KFP pipeline spec")
        name = query.get("name", [None])[0]
        if pipeline_id is None:
            name = name or spec["pipelineInfo"]["name"]
            if any(p["display_name"] == name for p in self.pipelines.values()):
                raise InvalidInputError(f"Failed to create a pipeline: a pipeline named {name} exists")
            pipeline_id = self._new_id("pipeline")
            self.pipelines[pipeline_id] = {"pipeline_id": pipeline_id, "display_name": name,
                                           "namespace": query.get("namespace", [""])[0]}
            self._add_version(pipeline_id, name, spec)
            return self.pipelines[pipeline_id]
        if pipeline_id not in self.pipelines:
            raise InvalidInputError(f"Failed to create a pipeline version: pipeline {pipeline_id} not found")
        if any(v["display_name"] == name for v in self.versions.values() if v["pipeline_id"] == pipeline_id):
            raise InvalidInputError(f"Failed to create a pipeline version: version {name} exists")
        return self._add_version(pipeline_id, name, spec)

    def _add_version(self, pipeline_id: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        version_id = self._new_id("version")
        self.versions[version_id] = {"pipeline_id": pipeline_id, "pipeline_version_id": version_id,
                                     "display_name": name, "spec": spec}
        return {k: v for k, v in self.versions[version_id].items() if k != "spec"}

    def _validate_runtime_config(self, version: dict[str, Any], runtime_config: dict[str, Any]) -> None:
        declared = version["spec"]["root"].get("inputDefinitions", {}).get("parameters", {})
        given = (runtime_config or {}).get("parameters") or {}
        for name, value in given.items():
            if name not in declared:
                raise InvalidInputError(f"Invalid input error: parameter {name} is not declared by the pipeline")
            kinds = _TYPE_CHECKS[declared[name]["parameterType"]]
            if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
                raise InvalidInputError(f"Invalid input error: input parameter {name} requires type "
                                   f"{declared[name]['parameterType']}")

    def _create_recurring_run(self, body: dict[str, Any]) -> dict[str, Any]:
        reference = body.get("pipeline_version_reference") or {}
        version = self.versions.get(reference.get("pipeline_version_id"))
        if version is None or version["pipeline_id"] != reference.get("pipeline_id"):
            raise InvalidInputError("Invalid input error: the pipeline version reference names no pipeline version")
        if body.get("experiment_id") not in self.experiments:
            raise InvalidInputError("Invalid input error: experiment not found")
        cron = ((body.get("trigger") or {}).get("cron_schedule") or {}).get("cron", "")
        if len(cron.split()) != 6:
            raise InvalidInputError(f"Invalid input error: cron {cron!r} needs 6 fields (with seconds)")
        if not 1 <= int(body.get("max_concurrency") or 0) <= 10:
            raise InvalidInputError("Invalid input error: max_concurrency must be between 1 and 10")
        self._validate_runtime_config(version, body.get("runtime_config"))
        run_id = self._new_id("recurring")
        self.recurring_runs[run_id] = {**body, "recurring_run_id": run_id, "status": "ENABLED"}
        return self.recurring_runs[run_id]

    def _create_run(self, body: dict[str, Any]) -> dict[str, Any]:
        reference = body.get("pipeline_version_reference") or {}
        version = self.versions.get(reference.get("pipeline_version_id"))
        if version is None:
            raise InvalidInputError("Invalid input error: the pipeline version reference names no pipeline version")
        if body.get("experiment_id") not in self.experiments:
            raise InvalidInputError("Invalid input error: experiment not found")
        self._validate_runtime_config(version, body.get("runtime_config"))
        run_id = self._new_id("run")
        running = [r["run_id"] for r in self.runs.values() if r["state"] == "RUNNING"]
        self.runs[run_id] = {**body, "run_id": run_id, "state": "RUNNING", "reads": 0, "running_at_create": running}
        return {k: v for k, v in self.runs[run_id].items() if k not in ("reads", "running_at_create")}

    def _read_run(self, run_id: str) -> tuple[int, Any]:
        run = self.runs.get(run_id)
        if run is None:
            return 404, {"error": f"run {run_id} not found", "code": 5}
        run["reads"] += 1
        if run["state"] == "RUNNING" and run["reads"] > self.polls_until_done:
            run["state"] = self.final_state
        return 200, {k: v for k, v in run.items() if k not in ("reads", "running_at_create")}

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        """Answers one request: (HTTP status, JSON body)."""
        self.requests.append((method, path))
        parts = path.strip("/").split("/")[2:]  # after apis/v2beta1
        if parts == ["healthz"]:
            # backend/src/apiserver/main.go (2.5.0 to 2.17.0): commit_sha, tag_name, multi_user.
            return 200, {"commit_sha": "unknown", "tag_name": self.tag_name, "multi_user": self.multi_user}
        if parts == ["pipelines"] and method == "GET":
            name = self._filter_name(query)
            found = [p for p in self.pipelines.values() if name is None or p["display_name"] == name]
            return 200, {"pipelines": found, "total_size": len(found)} if found else {}
        if parts == ["pipelines", "upload"] and method == "POST":
            return 200, self._upload(query, body)
        if parts == ["pipelines", "upload_version"] and method == "POST":
            return 200, self._upload(query, body, pipeline_id=query.get("pipelineid", [None])[0])
        if len(parts) == 3 and parts[0] == "pipelines" and parts[2] == "versions" and method == "GET":
            versions = [{k: v for k, v in x.items() if k != "spec"} for x in self.versions.values()
                        if x["pipeline_id"] == parts[1]]
            size = int(query.get("page_size", ["10"])[0])
            start = int(query.get("page_token", ["0"])[0] or 0)
            page = versions[start:start + size]
            token = str(start + size) if start + size < len(versions) else ""
            return 200, {"pipeline_versions": page, "next_page_token": token, "total_size": len(versions)}
        if parts == ["experiments"]:
            if method == "GET":
                namespace = query.get("namespace", [""])[0]
                if self.multi_user and not namespace:
                    raise InvalidInputError("Invalid input error: in multi-user mode, listing experiments requires "
                                       "a namespace")
                name = self._filter_name(query)
                found = [e for e in self.experiments.values()
                         if (name is None or e["display_name"] == name) and e.get("namespace", "") == namespace]
                return 200, {"experiments": found} if found else {}
            if self.multi_user and not body.get("namespace"):
                raise InvalidInputError("Invalid input error: in multi-user mode, an experiment needs a namespace")
            experiment_id = self._new_id("experiment")
            self.experiments[experiment_id] = {**body, "experiment_id": experiment_id}
            return 200, self.experiments[experiment_id]
        if parts == ["recurringruns"]:
            if method == "GET":
                experiment = query.get("experiment_id", [None])[0]
                found = [r for r in self.recurring_runs.values() if r["experiment_id"] == experiment]
                return 200, {"recurringRuns": found, "recurring_runs": found} if found else {}
            return 200, self._create_recurring_run(body)
        if parts == ["runs"] and method == "POST":
            return 200, self._create_run(body)
        if len(parts) == 2 and parts[0] == "runs" and method == "GET":
            return self._read_run(parts[1])
        if len(parts) == 2 and parts[0] == "recurringruns" and method == "DELETE":
            if self.recurring_runs.pop(parts[1], None) is None:
                return 404, {"error": f"recurring run {parts[1]} not found", "code": 5}
            return 200, {}
        return 404, {"error": f"no route {method} {path} in the stand-in", "code": 5}

    def _handler(self):
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _serve(self, method: str) -> None:
                url = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body: Any = None
                content_type = self.headers.get("Content-Type", "")
                if content_type.startswith("multipart/form-data"):
                    message = BytesParser(policy=default_policy).parsebytes(
                        f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
                    body = {part.get_param("name", header="content-disposition"): part.get_content()
                            for part in message.iter_parts()}
                    body = {k: v.decode() if isinstance(v, bytes) else v for k, v in body.items()}
                elif raw:
                    body = json.loads(raw)
                try:
                    status, answer = stand_in.handle(method, url.path, urllib.parse.parse_qs(url.query), body)
                except InvalidInputError as error:
                    status, answer = 400, {"error": str(error), "code": 3, "message": str(error)}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802 - http.server's names
                self._serve("GET")

            def do_POST(self):  # noqa: N802
                self._serve("POST")

            def do_DELETE(self):  # noqa: N802
                self._serve("DELETE")

        return Handler

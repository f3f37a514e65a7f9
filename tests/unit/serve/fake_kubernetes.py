"""A FAKE Kubernetes API server (no cluster runs here): just enough of the custom-objects API
for InferenceServices (get, create, JSON merge-patch) and of apps/v1 Deployments (get), over
real HTTP on loopback.

A FAKE of KServe's controller stands behind it, writing status as kserve 0.15 and 0.16 do
(pkg/apis/serving/v1beta1/inference_service_status.go, read at v0.15.0 and v0.16.0):
- the mode from the ``serving.kserve.io/deploymentMode`` annotation, in the names the faked
  version knows (0.15: Serverless / RawDeployment, 0.16: Knative / Standard, old names normalized);
  any other value falls back to the cluster default (Serverless), as GetDeploymentMode does;
- Knative mode: a new predictor revision per pod-template change, ``components.predictor``'s
  latestCreatedRevision / latestReadyRevision / latestRolledoutRevision / traffic (the canary
  share on the latest revision), ``observedGeneration`` the Knative Service's (one per revision:
  never the InferenceService's own generation);
- Standard mode: a Deployment ``<name>-predictor`` rolled out per pod-template change; the
  service's status has no revisions, ``observedGeneration`` is the Deployment's;
- the first read after a change returns the status from before it (Ready=True, old revisions),
  as KServe's reconcilers return the pre-update status;
- a model whose storage URI contains one of ``never_ready`` does not load: in Knative mode the
  new revision never becomes ready (Ready=False with a reason); in Standard mode the old pod
  keeps the Deployment Available, so the service stays Ready=True while the new ReplicaSet
  never becomes available (kserve 0.15 reads only the Available condition).

Writes are checked as the API server checks them, against the CRD's OpenAPI schema of the faked
KServe version (kserve_crd.py, the upstream CRDs): a value the schema refuses is 422 Invalid; a
field it does not declare is 400 under ``fieldValidation=Strict`` and a warning otherwise
(``warnings``; the real server prunes it)."""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_PATH = re.compile(r"^/apis/serving\.kserve\.io/v1beta1/namespaces/([^/]+)/inferenceservices(?:/([^/?]+))?")
_DEPLOYMENT = re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/deployments/([^/?]+)")


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch: null deletes, objects merge, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class FakeKubernetesApi:
    """Holds InferenceServices in memory and records every request."""

    def __init__(self, kserve_version: str = "0.15"):
        self.objects, self.requests, self.warnings = {}, [], []
        self.never_ready: list[str] = []
        self.kserve_version = kserve_version
        self.state: dict = {}
        self.stale: dict = {}
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _not_found(self, name):
                self._reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                                  "message": f'inferenceservices "{name}" not found', "code": 404})

            def _handle(self, method):
                match = _PATH.match(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                api.requests.append((method, self.path, self.headers.get("Content-Type"), body))
                deployment = _DEPLOYMENT.match(self.path)
                if deployment and method == "GET":
                    found = api.deployment(*deployment.groups())
                    return self._reply(200, found) if found else self._not_found(deployment.group(2))
                if not match:
                    return self._reply(404, {"kind": "Status", "code": 404, "message": "unknown path"})
                namespace, name = match.groups()
                key = (namespace, name or (body or {}).get("metadata", {}).get("name"))
                if method == "GET":
                    if key not in api.objects:
                        return self._not_found(key[1])
                    stale = api.stale.pop(key, None)
                    return self._reply(200, {**api.objects[key], "status": stale} if stale else api.objects[key])
                if method == "POST":
                    if key in api.objects:
                        return self._reply(409, {"kind": "Status", "code": 409, "reason": "AlreadyExists"})
                    refused = api.refusal(body, self.path)
                    if refused:
                        return self._reply(*refused)
                    body["metadata"]["generation"] = 1
                    api.objects[key] = api.reconcile(body)
                    return self._reply(201, body)
                if method == "PATCH":
                    if key not in api.objects:
                        return self._not_found(key[1])
                    if self.headers.get("Content-Type") != "application/merge-patch+json":
                        return self._reply(415, {"kind": "Status", "code": 415})
                    patched = merge_patch(api.objects[key], body)
                    refused = api.refusal({k: v for k, v in patched.items() if k != "status"}, self.path)
                    if refused:
                        return self._reply(*refused)
                    patched["metadata"]["generation"] = api.objects[key]["metadata"]["generation"] + 1
                    api.objects[key] = api.reconcile(patched)
                    return self._reply(200, patched)
                return self._reply(405, {"kind": "Status", "code": 405})

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_PATCH(self):
                self._handle("PATCH")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def refusal(self, obj, path):
        """(status, body) the API server answers a write of ``obj`` with, or None when it takes it."""
        from kserve_crd import invalid, unknown_fields

        problems = invalid(obj, self.kserve_version)
        if problems:
            return 422, {"kind": "Status", "code": 422, "reason": "Invalid", "message": "; ".join(problems)}
        unknown = unknown_fields(obj, self.kserve_version)
        if unknown and "fieldValidation=Strict" in path:
            return 400, {"kind": "Status", "code": 400, "reason": "BadRequest",
                         "message": "strict decoding error: " + ", ".join(f'unknown field "{f[1:]}"' for f in unknown)}
        self.warnings.extend(unknown)
        return None

    def reconcile(self, service):
        """FAKE KServe controller: the status it would report after this change (the previous one read first)."""
        key = (service["metadata"].get("namespace", "ml"), service["metadata"]["name"])
        previous = (self.objects.get(key) or {}).get("status")
        state = self.state.setdefault(key, {"revisions": 0, "ready": None, "rolled_out": None, "template": None,
                                            "deployment": None})
        predictor = service["spec"]["predictor"]
        template = json.dumps({k: v for k, v in predictor.items() if k != "canaryTrafficPercent"}, sort_keys=True)
        failing = next((marker for marker in self.never_ready if marker in template), None)
        annotation = (service["metadata"].get("annotations") or {}).get("serving.kserve.io/deploymentMode")
        mode = self.known_modes().get(annotation, "knative")  # unknown: the cluster default (Serverless)
        changed = template != state["template"]
        state["template"] = template
        name = service["metadata"]["name"]
        if mode == "knative":
            if changed:
                state["revisions"] += 1
            created = f"{name}-predictor-{state['revisions']:05d}"
            if not failing:
                state["ready"] = created
            percent = predictor.get("canaryTrafficPercent")
            if not failing and (percent is None or percent >= 100 or state["rolled_out"] is None):
                state["rolled_out"] = created
            traffic = [{"revisionName": state["rolled_out"], "percent": 100, "latestRevision": created == state[
                "rolled_out"]}]
            if state["rolled_out"] != created and state["ready"] == created and percent is not None:
                traffic = [{"revisionName": created, "percent": percent, "latestRevision": True},
                           {"revisionName": state["rolled_out"], "percent": 100 - percent, "latestRevision": False}]
            component = {"latestCreatedRevision": created, "latestReadyRevision": state["ready"],
                         "latestRolledoutRevision": state["rolled_out"], "traffic": traffic}
            ready = not failing
            status = {"observedGeneration": state["revisions"], "components": {"predictor": component}}
        else:
            deployment = state["deployment"] or {"generation": 0}
            if changed:
                deployment = {"generation": deployment["generation"] + 1}
            generation = deployment["generation"]
            deployment["status"] = ({"observedGeneration": generation, "replicas": 2, "updatedReplicas": 1,
                                     "availableReplicas": 1} if failing else
                                    {"observedGeneration": generation, "replicas": 1, "updatedReplicas": 1,
                                     "availableReplicas": 1})
            state["deployment"] = deployment
            ready = True  # the old pod keeps the Deployment Available while a new one fails
            status = {"observedGeneration": generation, "components": {"predictor": {}}}
        condition = ({"type": "Ready", "status": "True"} if ready else
                     {"type": "Ready", "status": "False", "reason": "RevisionFailed",
                      "message": f"model {failing} failed to load"})
        status["conditions"] = [condition]
        if previous is not None:
            self.stale[key] = previous  # the first read after the change still shows the status before it
        return {**service, "status": status}

    def known_modes(self):
        """Annotation value -> mode, as the faked KServe version's GetDeploymentMode reads it."""
        if self.kserve_version == "0.16":
            return {"Knative": "knative", "Serverless": "knative", "Standard": "raw", "RawDeployment": "raw"}
        return {"Serverless": "knative", "RawDeployment": "raw"}

    def deployment(self, namespace, name):
        """The predictor's Deployment (Standard mode) as the apps/v1 API returns it, or None."""
        service = name[:-len("-predictor")] if name.endswith("-predictor") else None
        state = self.state.get((namespace, service)) or {}
        deployment = state.get("deployment")
        if deployment is None:
            return None
        labels = {"app": name}
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": namespace, "generation": deployment["generation"]},
                "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                         "template": {"metadata": {"labels": labels},
                                      "spec": {"containers": [{"name": "kserve-container", "image": "x"}]}}},
                "status": deployment["status"]}

    def custom_objects_api(self):
        """A real kubernetes client pointed at this fake server."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        return client.CustomObjectsApi(client.ApiClient(configuration))

    def close(self):
        self.server.shutdown()

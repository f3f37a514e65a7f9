"""A FAKE Kubernetes API server (no cluster runs here): just enough of the custom-objects API
for InferenceServices (get, create, JSON merge-patch), over real HTTP on loopback.

A FAKE of KServe's controller stands behind it: after each change it reports the service Ready
for that generation (``status.observedGeneration`` and a ``Ready`` condition, the fields
kserve's v1beta1 InferenceServiceStatus carries), unless the model's storage URI contains one
of ``never_ready`` (then Ready=False with a reason, as for a model that cannot load)."""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_PATH = re.compile(r"^/apis/serving\.kserve\.io/v1beta1/namespaces/([^/]+)/inferenceservices(?:/([^/?]+))?")


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

    def __init__(self):
        self.objects, self.requests = {}, []
        self.never_ready: list[str] = []
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
                if not match:
                    return self._reply(404, {"kind": "Status", "code": 404, "message": "unknown path"})
                namespace, name = match.groups()
                key = (namespace, name or (body or {}).get("metadata", {}).get("name"))
                if method == "GET":
                    return self._reply(200, api.objects[key]) if key in api.objects else self._not_found(key[1])
                if method == "POST":
                    if key in api.objects:
                        return self._reply(409, {"kind": "Status", "code": 409, "reason": "AlreadyExists"})
                    body["metadata"]["generation"] = 1
                    api.objects[key] = api.reconcile(body)
                    return self._reply(201, body)
                if method == "PATCH":
                    if key not in api.objects:
                        return self._not_found(key[1])
                    if self.headers.get("Content-Type") != "application/merge-patch+json":
                        return self._reply(415, {"kind": "Status", "code": 415})
                    patched = merge_patch(api.objects[key], body)
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

    def reconcile(self, service):
        """FAKE KServe controller: the status it would report for this generation."""
        storage = json.dumps(service["spec"]["predictor"])
        failing = next((marker for marker in self.never_ready if marker in storage), None)
        condition = ({"type": "Ready", "status": "False", "reason": "RevisionFailed",
                      "message": f"model {failing} failed to load"} if failing else {"type": "Ready", "status": "True"})
        return {**service, "status": {"observedGeneration": service["metadata"]["generation"],
                                      "conditions": [condition]}}

    def custom_objects_api(self):
        """A real kubernetes client pointed at this fake server."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        return client.CustomObjectsApi(client.ApiClient(configuration))

    def close(self):
        self.server.shutdown()

"""A small model of the Istio mesh on top of the NetworkPolicy evaluator: sidecars, istiod, AuthorizationPolicies.

What it follows (Istio 1.26, as Kubeflow 1.10.2 installs it: common/istio/istio-install/base/install.yaml):

* **Injection**: a pod gets a sidecar when its label ``sidecar.istio.io/inject`` (else its annotation
  of that name) says ``"true"``, or says nothing and its namespace is labelled ``istio-injection=enabled``.
* **Readiness**: a sidecar gets its configuration and certificate from istiod (``istiod.istio-system:15012``);
  with native sidecars (``ENABLE_NATIVE_SIDECARS=true`` there) the application starts only once the proxy is
  ready, so a pod whose sidecar cannot reach istiod under the NetworkPolicies never serves nor calls anything.
* **Identity**: a client with a sidecar talks mTLS and carries ``cluster.local/ns/<ns>/sa/<sa>``; one
  without talks plain text, which the server's sidecar accepts in PERMISSIVE mode (no PeerAuthentication
  says STRICT in Kubeflow 1.10.2) but which matches no ``principals``, ``namespaces`` or ``source.*``
  condition (istio/api 1.26.1 security/v1beta1/authorization_policy.proto: "requires mTLS").
* **AuthorizationPolicies** on a server with a sidecar (authorization_policy.proto): a DENY policy that
  matches denies; with no ALLOW policy the request is allowed; otherwise an ALLOW policy must match. A
  policy in the root namespace (istio-system) applies to every workload; one without a selector to its
  namespace's. ``global-deny-all`` (ALLOW, no rules) matches nothing: every workload needs another ALLOW.
  An empty rule matches everything; ``request.headers[h]`` with ``*`` means "present".

Only what our flows meet is modelled; a field outside it raises, so the model cannot silently pass it.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from netpol import Address, Cluster, Endpoint, Pod, selector_matches

ROOT_NAMESPACE = "istio-system"
INJECT = "sidecar.istio.io/inject"


@dataclass(frozen=True)
class Request:
    """What a server's sidecar sees of a request: HTTP headers and path (gRPC is HTTP/2)."""

    headers: dict[str, str] = field(default_factory=dict, hash=False)
    path: str = "/"
    method: str = "GET"


class Mesh:
    """Istio over a Cluster: namespaces' injection labels, istiod and the AuthorizationPolicy objects."""

    def __init__(self, cluster: Cluster, istiod: Pod, policies: list[dict[str, Any]]):
        """Args: the NetworkPolicy model (its pods and namespaces); istiod's pod; AuthorizationPolicy objects."""
        self.cluster = cluster
        self.istiod = istiod
        self.policies = policies
        for policy in policies:
            if policy["spec"].get("action", "ALLOW") not in ("ALLOW", "DENY"):
                raise ValueError(f"{policy['metadata']['name']}: only ALLOW and DENY are modelled")

    def has_sidecar(self, endpoint: Endpoint) -> bool:
        """Whether Istio injects a proxy into this pod."""
        if not isinstance(endpoint, Pod):
            return False
        asked = endpoint.labels.get(INJECT, endpoint.annotations.get(INJECT))
        if asked is not None:
            return asked == "true"
        return self.cluster.namespaces[endpoint.namespace].get("istio-injection") == "enabled"

    def ready(self, endpoint: Endpoint) -> bool:
        """A pod without a sidecar, or one whose sidecar reaches istiod (else its containers never start)."""
        return not self.has_sidecar(endpoint) or self.cluster.allows(endpoint, self.istiod, 15012)

    def _applies(self, policy: dict[str, Any], pod: Pod) -> bool:
        namespace = policy["metadata"]["namespace"]
        if namespace != ROOT_NAMESPACE and namespace != pod.namespace:
            return False
        selector = policy["spec"].get("selector")
        return selector is None or selector_matches(selector, pod.labels)

    @staticmethod
    def _identity(source: Endpoint, mtls: bool) -> Optional[tuple[str, str]]:
        if not mtls or not isinstance(source, Pod):
            return None
        return f"cluster.local/ns/{source.namespace}/sa/{source.service_account}", source.namespace

    @staticmethod
    def _any(patterns: list[str], value: Optional[str]) -> bool:
        return value is not None and any(fnmatch.fnmatchcase(value, p) for p in patterns)

    def _source_matches(self, source: dict[str, Any], identity: Optional[tuple[str, str]]) -> bool:
        principal, namespace = identity or (None, None)
        for key, value in source.items():
            if key == "principals" and not self._any(value, principal):
                return False
            if key == "namespaces" and not self._any(value, namespace):
                return False
            if key == "notPrincipals" and (principal is None or self._any(value, principal)):
                return False
            if key not in ("principals", "namespaces", "notPrincipals"):
                raise ValueError(f"source field {key!r} is not modelled")
        return True

    @staticmethod
    def _operation_matches(operation: dict[str, Any], port: int, request: Request) -> bool:
        for key, value in operation.items():
            if key == "ports" and str(port) not in value:
                return False
            if key == "paths" and not any(fnmatch.fnmatchcase(request.path, p) for p in value):
                return False
            if key == "notPaths" and any(fnmatch.fnmatchcase(request.path, p) for p in value):
                return False
            if key == "methods" and request.method not in value:
                return False
            if key not in ("ports", "paths", "notPaths", "methods"):
                raise ValueError(f"operation field {key!r} is not modelled")
        return True

    def _condition_matches(self, condition: dict[str, Any], identity, request: Request) -> bool:
        key = condition["key"]
        header = re.fullmatch(r"request\.headers\[(.+)\]", key)
        if header:
            value = request.headers.get(header.group(1))
        elif key == "source.namespace":
            value = identity[1] if identity else None
        elif key == "source.principal":
            value = identity[0] if identity else None
        else:
            raise ValueError(f"condition key {key!r} is not modelled")

        def matches(patterns):
            return value is not None and any(p == "*" or fnmatch.fnmatchcase(value, p) for p in patterns)

        if "values" in condition and not matches(condition["values"]):
            return False
        if "notValues" in condition and matches(condition["notValues"]):
            return False
        return True

    def _rule_matches(self, rule: dict[str, Any], identity, port: int, request: Request) -> bool:
        sources = [f["source"] for f in rule.get("from") or []]
        operations = [t["operation"] for t in rule.get("to") or []]
        if sources and not any(self._source_matches(s, identity) for s in sources):
            return False
        if operations and not any(self._operation_matches(o, port, request) for o in operations):
            return False
        return all(self._condition_matches(c, identity, request) for c in rule.get("when") or [])

    def authorizes(self, source: Endpoint, destination: Pod, port: int, request: Request) -> tuple[bool, str]:
        """(allowed, the deciding policy) of the destination's sidecar for this request."""
        identity = self._identity(source, self.has_sidecar(source))
        applying = [p for p in self.policies if self._applies(p, destination)]
        for policy in applying:
            if policy["spec"].get("action") == "DENY" and any(
                    self._rule_matches(r, identity, port, request) for r in policy["spec"].get("rules") or []):
                return False, f"DENY {policy['metadata']['name']}"
        allowing = [p for p in applying if p["spec"].get("action", "ALLOW") == "ALLOW"]
        if not allowing:
            return True, "no ALLOW policy"
        for policy in allowing:
            if any(self._rule_matches(r, identity, port, request) for r in policy["spec"].get("rules") or []):
                return True, f"ALLOW {policy['metadata']['name']}"
        return False, "no ALLOW policy matches (" + ", ".join(p["metadata"]["name"] for p in allowing) + ")"

    def allows(self, source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP",
               request: Optional[Request] = None) -> tuple[bool, str]:
        """(allowed, why not): NetworkPolicies, both ends' sidecars ready, the destination's AuthorizationPolicies."""
        if not self.ready(source):
            return False, f"{source.name}'s sidecar cannot reach istiod: the pod never starts"
        if not self.ready(destination):
            return False, f"{destination.name}'s sidecar cannot reach istiod: the pod never starts"
        if not self.cluster.allows(source, destination, port, protocol):
            return False, "NetworkPolicies"
        if isinstance(destination, Pod) and self.has_sidecar(destination):
            allowed, why = self.authorizes(source, destination, port, request or Request())
            if not allowed:
                return False, why
        return True, ""


__all__ = ["Address", "Mesh", "Request"]

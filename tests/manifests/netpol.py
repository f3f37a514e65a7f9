"""A small evaluator of Kubernetes NetworkPolicies: may this pod (or address) reach that one on this port?

Follows the NetworkPolicy semantics of the Kubernetes API reference (networking.k8s.io/v1):
a pod selected by no policy of a direction is open in that direction; a selected pod admits
only what one of its policies' rules allows; a connection needs the source's egress and the
destination's ingress. Peers: ``podSelector`` (the policy's namespace), ``namespaceSelector``,
both (pods matching in namespaces matching), ``ipBlock`` (addresses outside the pod model);
ports with protocol (default TCP) and ``endPort``. Named ports are not supported (none is used).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Optional, Union


@dataclass(frozen=True)
class Pod:
    """A pod of the cluster model."""

    name: str
    namespace: str
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    annotations: dict[str, str] = field(default_factory=dict, hash=False)
    service_account: str = "default"


@dataclass(frozen=True)
class Address:
    """An endpoint outside the pod model: the API server, an external S3 service, the internet."""

    name: str
    ip: str


Endpoint = Union[Pod, Address]


def selector_matches(selector: Optional[dict[str, Any]], labels: dict[str, str]) -> bool:
    """A LabelSelector against labels; an empty selector matches everything."""
    if selector is None:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"unknown selector operator {operator!r}")
    return True


class Cluster:
    """Namespaces (with labels), pods and NetworkPolicies."""

    def __init__(self, namespaces: dict[str, dict[str, str]], pods: list[Pod], policies: list[dict[str, Any]]):
        """Args: namespace name -> labels; the pods; the NetworkPolicy objects (with metadata.namespace)."""
        self.namespaces = {name: {"kubernetes.io/metadata.name": name, **labels} for name, labels in namespaces.items()}
        self.pods = pods
        self.policies = policies
        unknown = {p.namespace for p in pods} - set(self.namespaces)
        if unknown:
            raise ValueError(f"pods in namespaces the model does not have: {sorted(unknown)}")

    def _selecting(self, pod: Pod, direction: str) -> list[dict[str, Any]]:
        found = []
        for policy in self.policies:
            if policy["metadata"].get("namespace") != pod.namespace:
                continue
            spec = policy["spec"]
            types = spec.get("policyTypes") or (["Ingress", "Egress"] if "egress" in spec else ["Ingress"])
            if direction in types and selector_matches(spec.get("podSelector") or {}, pod.labels):
                found.append(policy)
        return found

    def _peer_matches(self, peer: dict[str, Any], policy_namespace: str, endpoint: Endpoint) -> bool:
        if "ipBlock" in peer:
            if not isinstance(endpoint, Address):
                return False
            ip = ipaddress.ip_address(endpoint.ip)
            block = peer["ipBlock"]
            return ip in ipaddress.ip_network(block["cidr"]) and not any(
                ip in ipaddress.ip_network(e) for e in block.get("except") or [])
        if not isinstance(endpoint, Pod):
            return False
        if "namespaceSelector" in peer:
            if not selector_matches(peer["namespaceSelector"], self.namespaces[endpoint.namespace]):
                return False
        elif endpoint.namespace != policy_namespace:
            return False
        return selector_matches(peer.get("podSelector"), endpoint.labels)

    @staticmethod
    def _port_matches(ports: Optional[list[dict[str, Any]]], port: int, protocol: str) -> bool:
        if not ports:
            return True
        for entry in ports:
            if entry.get("protocol", "TCP") != protocol:
                continue
            if "port" not in entry:
                return True
            if isinstance(entry["port"], str):
                raise ValueError(f"named port {entry['port']!r} is not supported by this evaluator")
            if entry["port"] <= port <= entry.get("endPort", entry["port"]):
                return True
        return False

    def _side_allows(self, pod: Pod, direction: str, other: Endpoint, port: int, protocol: str) -> bool:
        policies = self._selecting(pod, direction)
        if not policies:
            return True
        key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
        for policy in policies:
            for rule in policy["spec"].get(key) or []:
                peers = rule.get(peers_key)
                peer_ok = not peers or any(self._peer_matches(p, pod.namespace, other) for p in peers)
                if peer_ok and self._port_matches(rule.get("ports"), port, protocol):
                    return True
        return False

    def allows(self, source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP") -> bool:
        """Whether a connection from ``source`` to ``destination:port`` is allowed by both sides."""
        if isinstance(source, Pod) and not self._side_allows(source, "Egress", destination, port, protocol):
            return False
        if isinstance(destination, Pod) and not self._side_allows(destination, "Ingress", source, port, protocol):
            return False
        return True

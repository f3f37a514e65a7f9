"""A run's lineage graph (executions and artifacts) as a standalone HTML page with an SVG drawing."""

from __future__ import annotations

from html import escape
from typing import Any

from components.lineage import queries
from components.lineage.recorder import CONTEXT_RUN, get_value


def run_graph(store, run_id: str) -> dict[str, Any]:
    """Nodes (executions and artifacts) and edges of one run, from the store."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    context = store.get_context_by_type_and_name(CONTEXT_RUN, run_id)
    if context is None:
        raise LookupError(f"no run {run_id} in the metadata store")
    executions = queries.task_executions(store, context)
    nodes, edges = {}, []
    for execution in executions:
        key = f"e{execution.id}"
        nodes[key] = {"kind": "execution", "label": get_value(execution.custom_properties, "task_name"),
                      "state": pb.Execution.State.Name(execution.last_known_state)}
    events = store.get_events_by_execution_ids([e.id for e in executions]) if executions else []
    artifact_ids = sorted({e.artifact_id for e in events})
    types = {t.id: t.name for t in store.get_artifact_types()}
    for artifact in store.get_artifacts_by_id(artifact_ids) if artifact_ids else []:
        nodes[f"a{artifact.id}"] = {"kind": "artifact", "type": types.get(artifact.type_id, "?"),
                                    "label": get_value(artifact.custom_properties, "display_name", "artifact"),
                                    "uri": artifact.uri}
    for event in events:
        if event.type == pb.Event.INPUT:
            edges.append((f"a{event.artifact_id}", f"e{event.execution_id}"))
        elif event.type == pb.Event.OUTPUT:
            edges.append((f"e{event.execution_id}", f"a{event.artifact_id}"))
    return {"run_id": run_id, "nodes": nodes, "edges": edges}


def _layers(nodes: dict, edges: list) -> dict[str, int]:
    depth = {key: 0 for key in nodes}
    for _ in range(len(nodes)):  # longest path, relaxed until stable (the graph is a DAG)
        changed = False
        for source, target in edges:
            if source in depth and target in depth and depth[target] < depth[source] + 1:
                depth[target] = depth[source] + 1
                changed = True
        if not changed:
            break
    return depth


def to_html(graph: dict[str, Any]) -> str:
    """Draws the graph left to right: executions as boxes (red when failed), artifacts as ellipses."""
    depth = _layers(graph["nodes"], graph["edges"])
    columns: dict[int, list[str]] = {}
    for key in sorted(graph["nodes"], key=lambda k: (depth[k], k)):
        columns.setdefault(depth[key], []).append(key)
    width, height = 170, 64
    position = {key: (30 + d * width, 30 + row * height) for d, keys in columns.items()
                for row, key in enumerate(keys)}
    total_w = 60 + (max(columns, default=0) + 1) * width
    total_h = 60 + max((len(v) for v in columns.values()), default=1) * height
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{total_w}' height='{total_h}' "
             "font-family='sans-serif' font-size='11'>",
             "<defs><marker id='arrow' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='6' markerHeight='6' "
             "orient='auto'><path d='M0,0L10,5L0,10z' fill='#666'/></marker></defs>"]
    for source, target in graph["edges"]:
        (x1, y1), (x2, y2) = position[source], position[target]
        parts.append(f"<line x1='{x1 + 130}' y1='{y1 + 15}' x2='{x2}' y2='{y2 + 15}' stroke='#999' "
                     "marker-end='url(#arrow)'/>")
    for key, node in graph["nodes"].items():
        x, y = position[key]
        label = escape(str(node["label"]))
        if node["kind"] == "execution":
            fill = {"FAILED": "#f4c7c3", "CACHED": "#fff2cc"}.get(node["state"], "#c9daf8")
            parts.append(f"<rect x='{x}' y='{y}' width='130' height='30' rx='4' fill='{fill}' stroke='#555'/>"
                         f"<text x='{x + 65}' y='{y + 19}' text-anchor='middle'>{label} ({node['state']})</text>")
        else:
            title = escape(f"{node['type']} {node['uri']}")
            parts.append(f"<g><title>{title}</title><ellipse cx='{x + 65}' cy='{y + 15}' rx='65' ry='15' "
                         f"fill='#d9ead3' stroke='#555'/><text x='{x + 65}' y='{y + 19}' "
                         f"text-anchor='middle'>{label}</text></g>")
    parts.append("</svg>")
    return (f"<html><head><meta charset='utf-8'><title>Lineage of {escape(graph['run_id'])}</title></head>"
            f"<body><h2>Lineage of run {escape(graph['run_id'])}</h2>{''.join(parts)}"
            "<p>Boxes: executions (blue complete, yellow cached, red failed). Ellipses: artifacts "
            "(hover for type and URI).</p></body></html>")

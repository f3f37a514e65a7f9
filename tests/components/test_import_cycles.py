"""No import cycles among the repository's modules, counting imports inside functions too."""

import ast
import glob
import os

from components.paths import REPO_ROOT


def _module_of(path: str) -> str:
    relative = os.path.relpath(path, REPO_ROOT)[:-3].replace(os.sep, ".")
    return relative[: -len(".__init__")] if relative.endswith(".__init__") else relative


def _graph() -> dict[str, set]:
    paths = [p for folder in ("components", "pipelines")
             for p in glob.glob(os.path.join(REPO_ROOT, folder, "**", "*.py"), recursive=True)]
    modules = {_module_of(p): p for p in paths}
    graph: dict[str, set] = {}
    for module, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for name in names:
                # The most specific repository module the name refers to (a module, else its package).
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name and name != module and not module.startswith(name + "."):
                    edges.add(name)
        graph[module] = edges
    return graph


def test_no_module_imports_one_that_imports_it_back():
    graph = _graph()
    cycles, state = [], {}

    def visit(module, stack):
        state[module] = "open"
        for other in sorted(graph.get(module, ())):
            if state.get(other) == "open":
                cycles.append(stack[stack.index(other):] + [other])
            elif other not in state:
                visit(other, stack + [other])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)

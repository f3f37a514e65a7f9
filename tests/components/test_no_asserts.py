"""The project's programs raise on bad input, never assert: a runtime may run optimized (``-O``, see
``components.images.RUNTIME_ENV``), which drops ``assert`` statements."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_no_assert_statement_in_components_or_pipelines():
    found = []
    for folder in ("components", "pipelines"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            found += [f"{path.relative_to(ROOT)}:{node.lineno}" for node in ast.walk(tree)
                      if isinstance(node, ast.Assert)]
    assert found == [], f"assert statements vanish under python -O; raise instead: {found}"

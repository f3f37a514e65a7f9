"""Materialization step logic: the online store brought up to date, then (locally) its server answering.

The materialization itself lives in the feature store library (``components/feature_store/
materialization.py``), which a live feed's own schedule also runs (``python -m
components.feature_store materialize``).
"""

from __future__ import annotations

from typing import Any

from components.kfp_io import ComponentError


def materialize_and_serve(source_uri: str, repo: str, serving_target: str, feature_server_url: str,
                          spec, fork_server: bool = False) -> dict[str, Any]:
    """Materializes the readings not yet online; locally makes Feast's feature server answer.

    Args:
        source_uri: The span source whose feeds the feature views read.
        repo: The Feast repository.
        serving_target: ``local`` (start the feature server when none answers) or ``kserve``
            (the cluster runs it).
        feature_server_url: Where the feature server answers.
        spec: The dataset spec (``DatasetSpec``); one without a feature view has nothing to materialize.
        fork_server: Fork the feature server from this process (``server.start_serving``'s ``fork``).

    Returns:
        The materialization's lineage metadata, with the feature server's URL.

    Raises:
        ComponentError: A bad target, a broken feed, or a feature server that does not come up.
    """
    from components.feature_store.materialization import materialize_new

    if serving_target not in ("local", "kserve"):
        raise ComponentError(f"serving_target must be 'local' or 'kserve', got {serving_target!r}")
    if not spec.feature_views:
        print(f"[materialize] {spec.name} declares no feature view: nothing to materialize", flush=True)
        return {"feature_view": "", "spans_materialized": []}
    if serving_target != "local":
        return {**materialize_new(source_uri, repo, spec), "feature_server_url": feature_server_url}
    from components.feature_store.repo import registry_written
    from components.feature_store.server import abandon, start_serving, wait_serving

    # The server imports Feast (seconds) on the other core while the materialization runs; it reads
    # the online store on every request, and the registry is replaced whole (atomic_registry.py).
    # A repository without a registry yet (no join ran on it) gets its server after the materialization.
    def serving(call, *args):
        try:
            return call(*args)
        except RuntimeError as error:
            raise ComponentError(str(error)) from None

    server = serving(start_serving, repo, feature_server_url, fork_server) if registry_written(repo) else None
    try:
        metadata = materialize_new(source_uri, repo, spec)
    except BaseException:
        if server is not None:
            abandon(server)  # a broken feed: no server started by this step is left behind
        raise
    state = serving(wait_serving, server or serving(start_serving, repo, feature_server_url))
    print(f"[materialize] feature server {'started' if state['started'] else 'answering'} on {state['url']}",
          flush=True)
    return {**metadata, "feature_server_url": feature_server_url}

"""Feast's local materialization engine, its output handed to the online store as Arrow.

Feast 0.67.0's ``LocalOutputNode`` (feast/infra/compute_engines/local/nodes.py) turns every value of
a batch into a ``ValueProto`` in Python (``feast.utils._convert_arrow_to_proto``: about 1 s for a
year of hourly readings of eight features at three keys) before the online store sees it. This
engine (``batch_engine: type:`` in feature_store.yaml) is Feast's local engine whose output node
hands the Arrow batch of a plain online feature view to an online store that takes Arrow
(``online_write_arrow``, ``batched_sqlite.py``: Feast's conversion of each distinct value, the same
rows); Feast's own node runs for everything else (offline writes, on-demand views, other stores).
"""

from __future__ import annotations

from feast.infra.common.materialization_job import MaterializationJobStatus
from feast.infra.compute_engines.local.arrow_table_value import ArrowTableValue
from feast.infra.compute_engines.local.compute import LocalComputeEngine, LocalComputeEngineConfig
from feast.infra.compute_engines.local.feature_builder import LocalFeatureBuilder
from feast.infra.compute_engines.local.job import LocalMaterializationJob
from feast.infra.compute_engines.local.nodes import LocalOutputNode
from pydantic import StrictStr

TYPE = "components.feature_store.arrow_engine.ArrowLocalComputeEngine"


class ArrowOutputNode(LocalOutputNode):
    """``LocalOutputNode`` that gives a plain online view's batches to ``online_write_arrow`` as they are."""

    def execute(self, context):
        """Writes the input online as Feast's node does, in Arrow when the view and the store allow it."""
        store, view = context.online_store, self.feature_view
        plain = getattr(view, "source_request_sources", None) is None and \
            getattr(view, "source_feature_view_projections", None) is None
        if not (view.online and not view.offline and plain and hasattr(store, "online_write_arrow")):
            return super().execute(context)
        table = self.get_single_table(context).data
        output = ArrowTableValue(data=table)
        context.node_outputs[self.name] = output
        if table.num_rows:
            join_keys = {entity.name: entity.dtype.to_value_type() for entity in view.entity_columns}
            size = context.repo_config.materialization_config.online_write_batch_size
            for batch in table.combine_chunks().to_batches(max_chunksize=size):
                store.online_write_arrow(context.repo_config, view, batch, join_keys)
        return output


class ArrowLocalFeatureBuilder(LocalFeatureBuilder):
    """``LocalFeatureBuilder`` whose output node is ``ArrowOutputNode``."""

    def build_output_nodes(self, view, input_node):
        """The DAG's output node: ``ArrowOutputNode`` where Feast's builder puts ``LocalOutputNode``."""
        node = ArrowOutputNode("output", self.dag_root.view, inputs=[input_node])
        self.nodes.append(node)
        return node


class ArrowLocalComputeEngineConfig(LocalComputeEngineConfig):
    """``LocalComputeEngineConfig`` under this engine's type (Feast finds an engine's config by ``<class>Config``)."""

    type: StrictStr = TYPE


class ArrowLocalComputeEngine(LocalComputeEngine):
    """``LocalComputeEngine`` materializing through ``ArrowLocalFeatureBuilder``."""

    def _materialize_one(self, registry, task, **kwargs) -> LocalMaterializationJob:
        # Feast 0.67.0 LocalComputeEngine._materialize_one with the builder replaced.
        job_id = f"{task.feature_view.name}-{task.start_time}-{task.end_time}"
        context = self.get_execution_context(registry, task)
        backend = self._get_backend(context)
        try:
            ArrowLocalFeatureBuilder(registry, task, backend=backend).build().execute(context)
        except Exception as error:  # noqa: BLE001 - a failed job is reported through its status, as Feast's engine does
            return LocalMaterializationJob(job_id=job_id, status=MaterializationJobStatus.ERROR, error=error)
        return LocalMaterializationJob(job_id=job_id, status=MaterializationJobStatus.SUCCEEDED)

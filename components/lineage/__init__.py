"""Lineage in ML Metadata: record pipeline runs, find the production model, answer provenance questions.

Runs in the data runtime (ml-metadata 1.17.1). Type and context names follow
what the Kubeflow Pipelines backend writes (``system.Pipeline``,
``system.PipelineRun``, ``system.ContainerExecution``, ``system.Model``, ...), so
the same queries work against a cluster's MLMD service.
"""

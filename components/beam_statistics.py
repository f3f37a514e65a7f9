"""TFDV statistics on an Apache Beam runner: the same statistics as in process, for data beyond one pod.

Shared by validate_data (span files) and the monitor (a window of served rows); both runtimes
hold TFDV and with it Apache Beam.

``beam_span_statistics`` reads each span's Parquet file in a Beam pipeline, turns each batch
of rows into the record batch that ``tfdv.generate_statistics_from_dataframe`` builds in
process (pandas column types, then ``CanonicalizeRecordBatch``: so a column's TFDV type is the
same on both paths), and runs ``tfdv.GenerateStatistics`` over them. The runner is chosen by
the Beam pipeline arguments: ``--direct_num_workers=2 --direct_running_mode=multi_processing``
(DirectRunner, several processes, tested here), ``--runner=FlinkRunner --flink_master=...``
or ``--runner=DataflowRunner --project=... --region=... --temp_location=gs://...``.
"""

from __future__ import annotations

import os
import shlex
import tempfile

from components.spans import SPAN_COLUMN, span_file

#: Rows per record batch handed to TFDV (Parquet row groups are split to this size).
BATCH_ROWS = 10_000


def parse_beam_args(text: str) -> list[str]:
    """Beam pipeline arguments from one string (shell quoting), e.g. ``--runner=FlinkRunner --parallelism=4``."""
    return shlex.split(text or "")


def _tfdv_batch(batch, span_column: str):
    """The record batch TFDV's in-process path builds from a DataFrame of these rows.

    As ``_generate_partial_statistics_from_df`` in tensorflow_data_validation 1.16.1
    (``utils/stats_gen_lib.py``): columns of a kind Arrow cannot take are left out, then
    ``CanonicalizeRecordBatch``.
    """
    import pyarrow as pa
    from tfx_bsl.arrow import table_util

    frame = batch.to_pandas().drop(columns=[span_column], errors="ignore")
    kept = [name for name, dtype in zip(frame.columns, frame.dtypes) if table_util.NumpyKindToArrowType(dtype.kind)]
    return table_util.CanonicalizeRecordBatch(pa.RecordBatch.from_pandas(frame[kept]))


def _batches_of(path: str):
    """A span file's rows in batches of ``BATCH_ROWS``, read where the Beam worker runs.

    Through Beam's file systems: a local path (DirectRunner), or ``s3://``/``gs://`` for workers
    elsewhere (with the matching ``apache-beam`` extra installed in their image).
    """
    import pyarrow.parquet as pq
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        yield from pq.ParquetFile(handle).iter_batches(batch_size=BATCH_ROWS)


def beam_span_statistics(dataset_dir: str, spans: list[str], beam_args: list[str],
                         span_column: str = SPAN_COLUMN) -> dict[str, object]:
    """TFDV statistics of each span of an extracted dataset folder, computed by a Beam pipeline.

    Args:
        dataset_dir: The extracted dataset (one ``<span>.parquet`` per span): a local folder, or
            a ``s3://``/``gs://`` URI that the runner's workers can read.
        spans: The spans to describe.
        beam_args: Beam pipeline arguments (runner and its options).
        span_column: Column naming each row's span; left out of the statistics.

    Returns:
        Span id -> ``DatasetFeatureStatisticsList``, in span order.
    """
    import apache_beam as beam
    import tensorflow_data_validation as tfdv
    from apache_beam.options.pipeline_options import PipelineOptions

    output = tempfile.mkdtemp(prefix="tfdv-beam-")
    local = "://" not in dataset_dir
    paths = {span: (os.path.abspath(os.path.join(dataset_dir, span_file(span))) if local
                    else f"{dataset_dir.rstrip('/')}/{span_file(span)}") for span in sorted(spans)}
    with beam.Pipeline(options=PipelineOptions(beam_args)) as pipeline:
        for span, path in paths.items():
            _ = (pipeline
                 | f"{span}: file" >> beam.Create([path])
                 | f"{span}: read" >> beam.FlatMap(_batches_of)
                 # One file's batches spread over the workers (a span may be larger than one worker's share).
                 | f"{span}: spread" >> beam.Reshuffle()
                 | f"{span}: to TFDV batches" >> beam.Map(_tfdv_batch, span_column)
                 | f"{span}: statistics" >> tfdv.GenerateStatistics(tfdv.StatsOptions())
                 | f"{span}: write" >> tfdv.WriteStatisticsToBinaryFile(os.path.join(output, f"{span}.pb")))
    return {span: tfdv.load_stats_binary(os.path.join(output, f"{span}.pb")) for span in paths}


def beam_frame_statistics(frame, beam_args: list[str]):
    """TFDV statistics of one DataFrame through the same Beam pipeline (written to Parquet first)."""
    folder = tempfile.mkdtemp(prefix="tfdv-beam-frame-")
    frame.to_parquet(os.path.join(folder, span_file("frame")), index=False)
    return beam_span_statistics(folder, ["frame"], beam_args)["frame"]

"""Feast's file registry, written aside and renamed: a reader never sees half a registry.

Feast 0.67.0's ``FileRegistryStore._write_registry`` (feast/infra/registry/file.py) truncates the
file and writes it in place. The local feature server refreshes its registry while the run's
steps apply definitions and record materializations: a refresh that lands mid-write parses half a
protobuf and fails. This store writes a temporary file beside it and renames it over the old
one (atomic on a POSIX file system); reading is Feast's own. The embedded repository uses it
(``repo.py``); a cluster's registry is on S3, whose writes are whole objects.
"""

from __future__ import annotations

import os
import uuid

from feast.infra.registry.file import FileRegistryStore
from feast.utils import _utc_now


class AtomicFileRegistryStore(FileRegistryStore):
    """``FileRegistryStore`` whose writes replace the file whole (configured as ``registry_store_type``)."""

    def _write_registry(self, registry_proto) -> None:
        registry_proto.version_id = str(uuid.uuid4())
        registry_proto.last_updated.FromDatetime(_utc_now())
        self._filepath.parent.mkdir(exist_ok=True)
        staging = self._filepath.with_name(f".{self._filepath.name}.{os.getpid()}.tmp")
        with open(staging, mode="wb") as handle:
            handle.write(registry_proto.SerializeToString())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staging, self._filepath)

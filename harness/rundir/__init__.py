"""The run folder: one reader and writer of results/<run-id>/ (config.json, manifest.json, records.jsonl and
the files built from them), below every stage that reads it.

It imports only harness.records, harness.config and harness.errors: the runner writes a run folder through
it, and the tables, the report, the gate, merge, the viewer and the Python API read one through it.

    from harness.rundir import RunFolder
    folder = RunFolder.open("results/demo-20261205-101500")
    folder.manifest.status                 # typed: harness.rundir.manifest.Manifest
    folder.latest_records()                # full Records; folder.compact_records() for the tables
"""

from harness.rundir.compact import CompactRecord
from harness.rundir.folder import (
    CALIBRATION_FILE,
    CONFIG,
    MANIFEST,
    RECORDS,
    RunFolder,
    latest_records,
    now_iso,
    read_manifest,
    read_records,
    write_json,
)
from harness.rundir.manifest import SCHEMA_VERSION, Manifest, VariantInfo

__all__ = [
    "CALIBRATION_FILE", "CONFIG", "MANIFEST", "RECORDS", "SCHEMA_VERSION", "CompactRecord", "Manifest", "RunFolder",
    "VariantInfo", "latest_records", "now_iso", "read_manifest", "read_records", "write_json",
]

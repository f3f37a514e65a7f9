"""Lands the Chicago taxi trips of TFX's example as quarterly spans: ``<dest>/2014-Q1/trips.csv``.

The trips ship inside the ``tfx`` wheel on PyPI
(``tfx/examples/chicago_taxi_pipeline/data/simple/data.csv``, 15,002 trips of 2013-2016). The
wheel is fetched without its dependencies (``pip download --no-deps``, a few seconds) into a
cache beside the destination and read as a zip: the data is not committed, and tfx is not
installed. Each trip lands in the quarter of its ``trip_start_timestamp`` (Unix seconds of the
city's local clock, as ``trip_start_hour`` shows); the CSV is written as TFX ships it.

Usage: ``python -m pipelines.examples.taxi.land DEST [--wheel PATH]``.
"""

from __future__ import annotations

import argparse
import glob
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from typing import Optional

TFX_VERSION = "1.21.0"
DATA_PATH = "tfx/examples/chicago_taxi_pipeline/data/simple/data.csv"
FEED_FILE = "trips.csv"


def _pip() -> list[str]:
    """A pip to download with: this interpreter's, else the repository's tools environment's."""
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode == 0:
        return [sys.executable, "-m", "pip"]
    here = os.path.dirname(os.path.abspath(__file__))
    tools = os.path.join(here, "..", "..", "..", ".venvs", "tools", "bin", "pip")
    if os.path.exists(tools):
        return [tools]
    raise SystemExit("error: no pip to fetch the tfx wheel with (run `make setup`, or pass --wheel PATH)")


def fetch_wheel(cache_dir: str) -> str:
    """The tfx wheel in ``cache_dir``, downloaded there (without dependencies) when absent."""
    found = glob.glob(os.path.join(cache_dir, f"tfx-{TFX_VERSION}-*.whl"))
    if found:
        return found[0]
    os.makedirs(cache_dir, exist_ok=True)
    print(f"Fetching tfx {TFX_VERSION} (its wheel only, for the taxi trips it ships) ...", flush=True)
    subprocess.run([*_pip(), "download", "--quiet", "--no-deps", "--disable-pip-version-check",
                    "--only-binary", ":all:", f"tfx=={TFX_VERSION}", "-d", cache_dir], check=True)
    found = glob.glob(os.path.join(cache_dir, f"tfx-{TFX_VERSION}-*.whl"))
    if not found:
        raise SystemExit(f"error: pip did not leave a tfx {TFX_VERSION} wheel in {cache_dir}")
    return found[0]


def read_trips(wheel: str):
    """The trips of the wheel's CSV, as TFX ships them."""
    import pandas as pd

    with zipfile.ZipFile(wheel) as archive:
        return pd.read_csv(io.BytesIO(archive.read(DATA_PATH)))


def quarter_of(timestamps) -> list[str]:
    """``YYYY-Qn`` of Unix-second timestamps."""
    import pandas as pd

    moments = pd.to_datetime(timestamps, unit="s")
    return [f"{year:04d}-Q{(month - 1) // 3 + 1}" for year, month in zip(moments.dt.year, moments.dt.month)]


def land_spans(destination: str, wheel: str) -> dict[str, int]:
    """Writes each quarter's trips to ``<destination>/<quarter>/trips.csv`` (replacing it); rows per span."""
    trips = read_trips(wheel)
    trips["_span"] = quarter_of(trips["trip_start_timestamp"])
    rows = {}
    for span, part in sorted(trips.groupby("_span"), key=lambda item: item[0]):
        folder = os.path.join(destination, span)
        staging = tempfile.mkdtemp(prefix=f".{span}-", dir=destination)
        part.drop(columns="_span").to_csv(os.path.join(staging, FEED_FILE), index=False)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(staging, folder)  # a span appears whole or not at all
        rows[span] = int(len(part))
    return rows


def main(argv: Optional[list[str]] = None) -> int:
    """Command line: ``python -m pipelines.examples.taxi.land DEST [--wheel PATH]``."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.examples.taxi.land", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("destination", help="source folder to land the quarterly spans in")
    parser.add_argument("--wheel", help=f"a tfx {TFX_VERSION} wheel already downloaded (default: fetch it)")
    args = parser.parse_args(argv)
    os.makedirs(args.destination, exist_ok=True)
    destination = os.path.abspath(args.destination)
    wheel = args.wheel or fetch_wheel(os.path.join(os.path.dirname(destination), ".downloads"))
    rows = land_spans(destination, wheel)
    print(f"landed {sum(rows.values()):,} trips in {len(rows)} quarterly spans ({min(rows)} to {max(rows)}) "
          f"-> {destination}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

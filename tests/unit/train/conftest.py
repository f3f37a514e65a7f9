import numpy as np
import pandas as pd
import pytest

from pipelines.examples.flights import dataset


def make_flights(rows: int, span: str, seed: int = 0) -> pd.DataFrame:
    """Synthetic flights with every landed column; the delay depends on precipitation and carrier."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "year": 2013, "month": int(span[5:]), "day": rng.integers(1, 29, rows),
        "dep_time": rng.uniform(500, 2300, rows), "sched_dep_time": rng.integers(500, 2300, rows),
        "dep_delay": rng.normal(10, 30, rows), "arr_time": rng.uniform(500, 2359, rows),
        "sched_arr_time": rng.integers(600, 2359, rows),
        "carrier": rng.choice(["UA", "EV", "DL", "B6"], rows), "flight": rng.integers(1, 5000, rows),
        "tailnum": "N1", "origin": rng.choice(["EWR", "JFK", "LGA"], rows),
        "dest": rng.choice(["ORD", "ATL", "LAX", "BOS"], rows), "air_time": rng.uniform(30, 300, rows),
        "distance": rng.uniform(100, 2500, rows), "hour": 10, "minute": 0,
        "temp": rng.normal(50, 15, rows), "dewp": rng.normal(40, 10, rows), "humid": rng.uniform(20, 100, rows),
        "wind_dir": rng.uniform(0, 360, rows), "wind_speed": rng.uniform(0, 30, rows),
        "precip": rng.exponential(0.05, rows), "pressure": rng.normal(1015, 8, rows),
        "visib": rng.uniform(1, 10, rows),
    })
    risk = 3 * frame["precip"] / 0.05 + (frame["carrier"] == "EV") * 1.5 - 2.5
    frame["arr_delay"] = np.where(rng.uniform(size=rows) < 1 / (1 + np.exp(-risk)), 45.0, -5.0)
    frame.loc[frame.index[:5], "arr_delay"] = np.nan  # cancelled flights
    frame.loc[frame.index[5:10], "temp"] = np.nan  # missing weather
    frame[dataset.SPAN_COLUMN] = span
    return frame


@pytest.fixture
def raw():
    return pd.concat([make_flights(1500, f"2013-0{m}", seed=m) for m in (1, 2, 3)], ignore_index=True)

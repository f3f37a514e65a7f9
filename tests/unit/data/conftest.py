import pytest

from components.extract.land import load_flights


@pytest.fixture(scope="session")
def flights():
    """A 5% sample of the real 2013 flights, as landed (typed per components.dataset)."""
    return load_flights(fraction=0.05, seed=1)


@pytest.fixture
def source(tmp_path, flights):
    """A local source folder with spans 2013-01..2013-04 of the sample."""
    from components.extract.source import SPAN_FILE

    for month in range(1, 5):
        folder = tmp_path / "source" / f"2013-{month:02d}"
        folder.mkdir(parents=True)
        flights[flights["month"] == month].to_parquet(folder / SPAN_FILE, index=False)
    return tmp_path / "source"

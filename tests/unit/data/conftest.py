import pytest

from pipelines.examples.flights.land import load_joined_flights as load_flights


@pytest.fixture(scope="session")
def flights():
    """A 5% sample of the real 2013 flights, as landed (typed per components.dataset)."""
    return load_flights(fraction=0.05, seed=1)


@pytest.fixture
def source(tmp_path, flights):
    """A local source folder with spans 2013-01..2013-04 of the sample."""
    from pipelines.examples.flights.dataset import SPAN_FILE

    for month in range(1, 5):
        folder = tmp_path / "source" / f"2013-{month:02d}"
        folder.mkdir(parents=True)
        flights[flights["month"] == month].to_parquet(folder / SPAN_FILE, index=False)
    return tmp_path / "source"


@pytest.fixture(params=["sqlite", "mariadb"])
def metadata_uri(request, tmp_path):
    """An empty ML Metadata store per test, on each backend: a SQLite file, a MariaDB database."""
    if request.param == "sqlite":
        return str(tmp_path / "metadata.sqlite")
    import uuid

    server = request.getfixturevalue("mariadb")
    return f"{server}/mlmd_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory):
    """A MariaDB server (Debian's mariadb-server) started for the tests on a free loopback port.

    Grant tables are skipped: the server listens on 127.0.0.1 only and lives as long as the session.
    """
    import os
    import shutil
    import socket
    import subprocess
    import time

    if shutil.which("mariadbd", path=os.environ.get("PATH", "") + ":/usr/sbin") is None:
        message = "MariaDB is not installed; `make system-deps` installs it (needs root)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    datadir = tmp_path_factory.mktemp("mariadb")
    log = open(datadir / "server.log", "w")
    user = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={datadir}/data", "--skip-test-db",
                    "--auth-root-authentication-method=normal", *user], check=True, stdout=log, stderr=log)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [shutil.which("mariadbd", path="/usr/sbin:" + os.environ.get("PATH", "")), "--no-defaults",
         f"--datadir={datadir}/data", f"--port={port}", "--bind-address=127.0.0.1",
         f"--socket={datadir}/mariadb.sock", f"--pid-file={datadir}/mariadb.pid", "--skip-grant-tables",
         "--skip-log-bin", *user], stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"MariaDB did not start; see {datadir}/server.log") from None
            time.sleep(0.2)
    yield f"mysql://root@127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(params=["local recorder", "kfp backend stand-in"])
def record(request):
    """Writes a run folder into a store, as the local recorder or as the KFP backend would have.

    The backend's records come from the backend stand-in (the Go backend cannot run here).
    """
    from lineage_runs import record_as_kfp_backend

    from components.lineage import recorder

    if request.param == "local recorder":
        return recorder.record_run
    return record_as_kfp_backend

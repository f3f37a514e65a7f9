"""A real S3 endpoint for tests: moto in server mode on a free loopback port (both data and serve test envs)."""

import contextlib
import socket


@contextlib.contextmanager
def moto_server():
    """Yields ``http://127.0.0.1:<port>`` of a running moto S3 server, stopped afterwards."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def use_endpoint(monkeypatch, endpoint: str):
    """Sets S3_ENDPOINT and test credentials as the components read them; returns a minio client."""
    from minio import Minio

    monkeypatch.setenv("S3_ENDPOINT", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return Minio(endpoint.split("://")[1], access_key="testing", secret_key="testing", secure=False)

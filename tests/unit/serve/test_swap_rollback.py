"""Deploying a new version and rolling back under traffic: the server follows the registry, drops nothing."""

import os
import subprocess
import sys
import threading
import time

from components import registry
from components.model_server import control


def test_version_switch_and_rollback_under_traffic_lose_no_request(tmp_path, trained, other_model, samples):
    registry_uri, state_dir = str(tmp_path / "registry"), str(tmp_path / "serving")
    registry.publish(registry_uri, "flights-delay", trained[0], {})
    state = control.ensure_serving(state_dir, registry_uri, "flights-delay", control.free_port())
    answers, stop = [], threading.Event()

    def traffic():
        deadline = time.monotonic() + 120  # bounded, whatever happens
        while not stop.is_set() and time.monotonic() < deadline:
            status, body = control.http_json("POST", state["predict_url"], {"instances": samples["instances"][:1]})
            answers.append((status, body.get("model_version") if isinstance(body, dict) else body))

    def answered(more):
        """Waits until the traffic thread has ``more`` new answers (not a fixed time: a busy machine is slow)."""
        target, deadline = len(answers) + more, time.monotonic() + 60
        while len(answers) < target and time.monotonic() < deadline and sender.is_alive():
            time.sleep(0.05)

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        answered(20)
        registry.publish(registry_uri, "flights-delay", other_model, {})
        switched = control.ensure_serving(state_dir, registry_uri, "flights-delay", state["port"])
        assert switched["pid"] == state["pid"]  # same process: swapped, not restarted
        answered(20)
        result = subprocess.run([sys.executable, "-m", "components.model_server", "rollback", "--registry",
                                 registry_uri, "--state-dir", state_dir], capture_output=True, text=True,
                                cwd=os.getcwd(), check=True)
        assert "production is now v0001 (was v0002)" in result.stdout
        assert control.status(state_dir)["version"] == control.status(state_dir)["serving_version"] == "v0001"
        answered(20)
    finally:
        stop.set()
        sender.join()
        control.stop(state_dir)
    statuses = {status for status, _ in answers}
    versions = [version for _, version in answers]
    assert statuses == {200}, [a for a in answers if a[0] != 200][:3]
    assert len(answers) > 50
    first_v2, last_v2 = versions.index("v0002"), len(versions) - 1 - versions[::-1].index("v0002")
    assert set(versions[:first_v2]) == {"v0001"} and set(versions[last_v2 + 1:]) == {"v0001"}
    history = open(os.path.join(registry_uri, "flights-delay", registry.HISTORY)).read()
    assert '"event": "rollback"' in history


def test_rollback_refuses_what_it_cannot_do(tmp_path, trained):
    import pytest

    registry_uri = str(tmp_path / "registry")
    with pytest.raises(ValueError, match="never been deployed"):
        registry.rollback(registry_uri, "m")
    registry.publish(registry_uri, "m", trained[0], {})
    with pytest.raises(ValueError, match="no previous version"):
        registry.rollback(registry_uri, "m")
    with pytest.raises(ValueError, match="no version v0042"):
        registry.rollback(registry_uri, "m", "v0042")

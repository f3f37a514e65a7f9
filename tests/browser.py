"""Opens an HTML page in headless Chromium as a reader would, and says what a reader would see.

``look(path)`` takes a screenshot (kept for the failure message) and a NetLog of the visit:
a page that renders offline is not blank and makes no network request at all, and it names
no local file either (a report handed to the Kubeflow dashboard's artifact viewer travels alone).
Chromium is Debian's ``chromium`` (``make system-deps`` installs it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

#: Little background traffic of the browser's own (what remains is told apart in _requests).
_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--disable-default-apps", "--disable-client-side-phishing-detection", "--disable-domain-reliability",
          "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
          "--window-size=1200,900"]
_LOCAL_REFERENCE = re.compile(r"""\b(?:src|href)\s*=\s*["']?(?!#|data:)([^"'\s>]+)"""
                              r"""|url\(\s*["']?(?!#|data:)([^"')]+)|@import""", re.IGNORECASE)


def chromium() -> str:
    """The Chromium binary; skips the test where there is none, except in CI (where make installs it)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed; make system-deps installs it (Debian package chromium)")
    pytest.skip("chromium is not installed (make system-deps installs it as root)")


def look(path: str, screenshot: str) -> dict:
    """Renders ``path``; returns the network requests it made, its external references and how much ink it shows."""
    from PIL import Image

    with tempfile.TemporaryDirectory() as folder:
        page = os.path.abspath(path)
        if not page.endswith((".html", ".htm")):
            # A KFP HTML artifact is a file without extension, which a browser shows as text;
            # the dashboard serves it as HTML, so it is opened as HTML here too.
            page = os.path.join(folder, os.path.basename(page) + ".html")
            shutil.copy(path, page)
        netlog = os.path.join(folder, "net.json")
        subprocess.run([chromium(), *_FLAGS, f"--user-data-dir={folder}/profile", f"--log-net-log={netlog}",
                        f"--screenshot={screenshot}", "file://" + page],
                       capture_output=True, timeout=120, check=False)
        requests = _requests(netlog)
    with Image.open(screenshot) as image:
        pixels = list(image.convert("L").getdata())
    background = max(set(pixels), key=pixels.count)
    ink = sum(1 for p in pixels if abs(p - background) > 24) / len(pixels)
    with open(path, encoding="utf-8", errors="replace") as handle:
        references = [m.group(1) or m.group(2) or "@import" for m in _LOCAL_REFERENCE.finditer(handle.read())]
    return {"requests": requests, "references": references, "ink": ink}


def _requests(netlog: str) -> list[str]:
    if not os.path.exists(netlog):
        return ["(no NetLog written: chromium did not run)"]
    with open(netlog, encoding="utf-8") as handle:
        text = handle.read()
    if not text.rstrip().endswith("}"):  # a NetLog cut short still lists its events
        text = text.rstrip().rstrip(",") + "]}"
    log = json.loads(text)
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    # The page's own requests carry its site (file://) as network isolation key; the browser's
    # background requests (updates, accounts) carry another and are not the page's doing.
    return sorted({e["params"]["url"] for e in log["events"]
                   if e["type"] == start and str(e.get("params", {}).get("network_isolation_key", "")).startswith(
                       "file://")})


def assert_renders_offline(path: str, screenshot: str, min_ink: float = 0.002) -> None:
    """Fails unless the page shows something, fetches nothing and names no external file."""
    seen = look(path, screenshot)
    assert not seen["requests"], f"{path} made network requests: {seen['requests']} (screenshot {screenshot})"
    assert not seen["references"], f"{path} names external resources: {seen['references'][:5]}"
    assert seen["ink"] >= min_ink, f"{path} renders blank ({seen['ink']:.2%} ink; screenshot {screenshot})"

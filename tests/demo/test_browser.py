"""``restore demo`` in a real browser: start it, upload an image, wait for the restored one.

The page is started as the user starts it (``restore demo`` in a subprocess, on a free loopback
port, with random weights of a small N2N UNet) and driven by Playwright through the system's
Chromium (Debian's ``chromium`` package; Playwright never downloads a browser here). The
result offered for download must have the input's size and differ from it; a screenshot of the
page is saved under the test's temporary folder.

Skipped cleanly when gradio, Playwright or a Chromium binary is missing; nothing is installed.
``RESTORE_CHROMIUM`` names a browser binary explicitly.
"""

from __future__ import annotations

import os
import re
import selectors
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from api_nets import generated_image, write_case
from data_helpers import save_rgb

pytest.importorskip("gradio")
sync_api = pytest.importorskip("playwright.sync_api")

ROOT = Path(__file__).resolve().parents[2]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
START_TIMEOUT_S = 40


def find_chromium() -> str | None:
    explicit = os.environ.get("RESTORE_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


@pytest.fixture
def demo_server(tmp_path):
    """``restore demo`` on a free loopback port; yields its address, stops it afterwards."""
    options, weights = write_case(tmp_path / "case", "n2n_unet")
    log = (tmp_path / "demo.log").open("w")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "restore.cli.main", "demo", "-opt", str(options), "--weights", str(weights),
         "--port", "0", "--quickstart-dir", str(tmp_path / "no_quickstart")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=log, text=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        line = ""
        with selectors.DefaultSelector() as waiting:  # never block past the deadline on a silent process
            waiting.register(proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline and proc.poll() is None and "serving on" not in line:
                if waiting.select(timeout=0.5):
                    line = proc.stdout.readline()
        match = re.search(r"serving on (http://127\.0\.0\.1:\d+/)", line)
        assert match, f"no address printed: {line!r}; log: {(tmp_path / 'demo.log').read_text()[-2000:]}"
        yield match.group(1)
    finally:
        proc.terminate()  # the process this fixture started, by its handle
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_upload_restore_and_download_in_chromium(demo_server, tmp_path):
    browser_path = find_chromium()
    if browser_path is None:
        pytest.skip("no Chromium found (Debian: apt-get install chromium; or set RESTORE_CHROMIUM)")
    rgb = generated_image(72, 104, seed=4)
    image = save_rgb(tmp_path / "upload.png", rgb)
    shot = tmp_path / "demo.png"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=browser_path, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(demo_server)
            page.locator("#input-image input[type=file]").set_input_files(str(image))  # dropping restores at once
            link = page.locator("#download a").first
            link.wait_for(timeout=30_000)
            page.locator("#result-slider img").nth(1).wait_for(timeout=10_000)
            summary = page.locator("#summary").inner_text()
            response = page.request.get(link.get_attribute("href"))
            assert response.ok
            restored = cv2.imdecode(np.frombuffer(response.body(), np.uint8), cv2.IMREAD_UNCHANGED)
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert restored is not None and restored.shape == rgb.shape and restored.dtype == np.uint8
    assert not np.array_equal(cv2.cvtColor(restored, cv2.COLOR_BGR2RGB), rgb)
    assert "restored 104x72 -> 104x72" in summary
    assert shot.stat().st_size > 10_000

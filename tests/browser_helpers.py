"""Helpers for the Chromium tests: a Werkzeug server thread, the browser, screenshots."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

from tests.peers import require_peer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
DOCS_STATIC = ROOT / "docs" / "_static"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Serve ``app`` on a free 127.0.0.1 port in a thread; yields the base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium driven by Playwright (skips or fails when it is missing)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        require_peer("playwright", str(exc))
    if not os.access(CHROMIUM, os.X_OK):
        require_peer("chromium", f"{CHROMIUM} not found (apt-get install -y chromium)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def shoot(page: Any, name: str) -> dict[str, Path]:
    """Full-page screenshots at desktop and phone width; checks the phone has no side scroll."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    paths = {}
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.wait_for_timeout(50)  # let the layout settle after the resize
        path = SCREENSHOTS / f"{name}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        paths[label] = path
        if label == "phone":
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{name}: {overflow}px of horizontal scroll at phone width"
    page.set_viewport_size(DESKTOP)
    return paths


def publish(paths: dict[str, Path], name: str) -> None:
    """Copy screenshots the README shows into docs/_static/.

    Only when missing or with MAILCONNECT_UPDATE_DOC_SCREENSHOTS=1: the pictures differ in every
    run (the sandbox's ports), and a test run should not leave tracked files modified.
    """
    DOCS_STATIC.mkdir(parents=True, exist_ok=True)
    update = os.environ.get("MAILCONNECT_UPDATE_DOC_SCREENSHOTS") == "1"
    for label, path in paths.items():
        target = DOCS_STATIC / f"{name}-{label}.png"
        if update or not target.exists():
            shutil.copyfile(path, target)

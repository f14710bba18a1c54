"""Browser tests: the web page in headless Chromium (Debian's), driven by Playwright's Python API.

No browser is downloaded (never `playwright install`): Playwright launches
/usr/bin/chromium with the flags that work on these machines. Screenshots go to
artifacts/browser/<test>/ at the top of the checkout (gitignored) and their paths are
printed, so a failing run leaves pictures of what the page showed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """Module-scoped on purpose: Playwright's sync API runs an event loop on the main thread
    while it is open, and every later test that calls asyncio.run() would fail under it."""
    if not CHROMIUM.exists():
        pytest.fail("Chromium is not installed: run scripts/setup.sh --test as root "
                    "(Debian package chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Screenshots:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    def take(self, page, name: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Screenshots:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    return Screenshots(ARTIFACTS / name)


# One `shardbox up` per test module, as the end-to-end S3 tests have it.
from tests.integration.conftest import bucket, cluster, s3  # noqa: E402, F401

"""A real headless Chromium for the dashboard's tests, driven by Playwright: Debian's
`chromium` (`.ci/run` installs it; Playwright never downloads a browser here). Tests
skip, saying why, only when no Chromium is on the machine. Screenshots are kept under
PIPEWORKS_TEST_ARTIFACTS (default .test-artifacts/) as the tests' artifacts."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(os.environ.get("PIPEWORKS_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[1] / ".test-artifacts"))
# Without the network flags, Chromium keeps calling Google's hosts, which this machine's
# closed network refuses.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


def chromium_path() -> str:
    found = os.environ.get("PIPEWORKS_CHROMIUM") or shutil.which("chromium") or shutil.which(
        "chromium-browser")
    if not found:
        pytest.skip("no Chromium on this machine: `.ci/run` installs Debian's chromium "
                    "package; set PIPEWORKS_CHROMIUM to another build")
    return found


@dataclass
class PageErrors:
    """What the page's console and network said was wrong (a CSP violation, a failed
    script, a 4xx/5xx asset)."""

    messages: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def browser_page(base_url: str) -> AsyncIterator[tuple[Any, PageErrors]]:
    from playwright.async_api import async_playwright

    errors = PageErrors()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path(),
                                                   args=FLAGS, headless=True)
        try:
            context = await browser.new_context(base_url=base_url,
                                                viewport={"width": 1280, "height": 900})
            # Offline, as the dashboard must work: any request off this host fails.
            await context.route(lambda url: not url.startswith(base_url),
                                lambda route: route.abort())
            page = await context.new_page()
            page.on("console", lambda m: errors.messages.append(f"console {m.type}: {m.text}")
                    if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.messages.append(f"page error: {e}"))
            # An event stream cut by leaving its page is aborted, not failed.
            page.on("requestfailed", lambda r: None if "ERR_ABORTED" in (r.failure or "")
                    else errors.messages.append(f"request failed: {r.url} {r.failure}"))
            yield page, errors
        finally:
            await browser.close()


async def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, f"{path} looks empty"
    return path

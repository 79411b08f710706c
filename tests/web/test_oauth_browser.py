"""The sign-in and consent pages in a real headless browser: Debian's chromium driven by
Playwright, JavaScript off, keyboard only (typing, Tab, Enter). The person signs in, allows, and
the browser lands on the client's loopback redirect with a code, the state and the issuer."""

from __future__ import annotations

import shutil
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import async_playwright

from tests.support.loopback_http import LoopbackHttp, Route
from tests.web.oauth_box import PASSWORD, authorize_url, run_oauth_box

CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason=f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium; .ci/run "
    "does this) to run the browser test of the sign-in pages",
)


async def test_keyboard_only_sign_in_and_consent_without_javascript() -> None:
    async with (
        LoopbackHttp({"/callback": Route(body=b"landed")}) as client_app,
        run_oauth_box() as box,
        async_playwright() as playwright,
    ):
        redirect = f"http://127.0.0.1:{client_app.port}/callback"
        url, _verifier = authorize_url(box, redirect_uri=redirect)
        # --no-sandbox: CI runs as root, where chromium's sandbox cannot start.
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = await browser.new_context(java_script_enabled=False)
            page = await context.new_page()
            await page.goto(url)
            assert await page.title() == "Sign in · smcp-box"
            assert "Test Editor" in await page.content()
            # The user name field has autofocus; the password field is next in the tab order.
            await page.keyboard.type("alice")
            await page.keyboard.press("Tab")
            await page.keyboard.type(PASSWORD)
            async with page.expect_navigation():
                await page.keyboard.press("Enter")
            assert await page.title() == "Allow access? · smcp-box"
            assert "alpha" in await page.content()
            # First stop in the tab order is Allow.
            await page.keyboard.press("Tab")
            focused = await page.evaluate("document.activeElement.textContent")
            assert focused == "Allow"
            await page.keyboard.press("Enter")
            await page.wait_for_url(f"{redirect}?**")
            params = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
            assert params["iss"] == box.base_url
            assert params["state"] == "st-123"
            assert len(params["code"]) >= 32
            assert client_app.hits >= 1  # the callback (and the browser's favicon request)
        finally:
            await browser.close()

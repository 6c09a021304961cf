"""The dashboard in a real browser: headless Chromium driven over WebDriver through the first-run wizard
(provider pointed at a fake upstream, client key, default model, tool set-up), a combo, a key, playground
requests that show up in the logs and the usage chart, every page within its load budget, Arabic laid out
right to left — and no request ever leaving the gateway's origin, no CSP violation, no script error.

Screenshots of each page go to test-artifacts/dashboard/.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from omniroute import console_buffer
from tests.browser.webdriver import Browser, browser_paths, chromium
from tests.conftest import ROOT, MakeGateway
from tests.fakes.fixtures import MakeFake
from tests.fakes.reply import DEFAULT_TEXT

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(browser_paths() is None, reason="chromium and chromedriver are not installed"),
]

ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
PASSWORD = "a long dashboard passphrase"
PAGES = [
    "home",
    "providers",
    "combos",
    "keys",
    "usage",
    "quotas",
    "health",
    "logs",
    "cli-tools",
    "playground",
    "settings",
]
PAGE_BUDGET_MS = 300


async def ready(b: Browser, page: str) -> None:
    await b.wait_js(
        "return document.body.dataset.ready === arguments[0];", page, wait_s=15, what=f"page {page} ready"
    )


async def goto(b: Browser, page: str) -> int:
    """Open a page through the app's router; returns how long it took to render (ms, measured in the page)."""
    await b.js("location.hash = '#/' + arguments[0];", page)
    await ready(b, page)
    return int(await b.js("return Number(document.body.dataset.renderMs);"))


async def shot(b: Browser, name: str) -> None:
    await b.screenshot(ARTIFACTS / f"{name}.png")


async def run_wizard(b: Browser, url: str, token: str, fake_url: str) -> str:
    await b.get(f"{url}/setup#{token}")
    await b.type("[data-testid=setup-password]", PASSWORD)
    await b.type("[data-testid=setup-confirm]", PASSWORD)
    await shot(b, "00-setup")
    await b.click("[data-testid=setup-submit]")
    await ready(b, "wizard")
    assert "#" + token not in str(await b.js("return location.href;"))  # the token left the address bar
    # 1. a provider pointed at the fake upstream, tested
    await b.select("[data-testid=wizard-provider]", "openai")
    await b.type("[data-testid=wizard-provider-key]", "sk-fake-upstream-key-0000")
    await b.click(".wizard-body details summary")
    await b.type("[data-testid=wizard-base-url]", fake_url)
    await b.click("[data-testid=wizard-local]")
    await b.click("[data-testid=wizard-connect]")
    await b.wait_text("[data-testid=wizard-test-result]", "Works", wait_s=20)
    await shot(b, "01-wizard-provider")
    await b.click("[data-testid=wizard-next]")
    # 2. a client key, shown once
    await b.click("[data-testid=wizard-create-key]")
    key = await b.text("[data-testid=new-key]")
    assert key.startswith("omr_")
    await shot(b, "02-wizard-key")
    await b.click("[data-testid=wizard-next]")
    # 3. the default model
    await b.type("[data-testid=wizard-model]", "openai/gpt-4o-mini")
    await b.click("[data-testid=wizard-save-model]")
    await shot(b, "03-wizard-model")
    await b.click("[data-testid=wizard-next]")
    # 4. the tool set-up, filled with this gateway's URL and the new key
    await b.select("[data-testid=wizard-tool]", "claude-code")
    await b.wait_text(".wizard-body", f'ANTHROPIC_BASE_URL="{url}"')
    assert key in str(await b.js("return document.querySelector('.wizard-body').textContent;"))
    await shot(b, "04-wizard-tool")
    await b.click("[data-testid=wizard-next]")
    await ready(b, "home")
    return key


async def create_combo(b: Browser) -> None:
    await goto(b, "combos")
    await b.click("[data-testid=combo-new]")
    await b.type("[data-testid=combo-name]", "smart")
    await b.type("[data-testid=combo-target-model]", "openai/gpt-4o-mini")
    await b.click("[data-testid=combo-add-target]")
    await b.type(
        "[data-testid=combo-targets] li:nth-child(2) [data-testid=combo-target-model]", "openai/gpt-4.1-mini"
    )
    # drag the second target above the first (HTML5 drag and drop, as a mouse would)
    await b.js(
        "const rows = document.querySelectorAll('[data-testid=combo-targets] li');"
        "const dt = new DataTransfer();"
        "rows[1].dispatchEvent(new DragEvent('dragstart', {dataTransfer: dt, bubbles: true}));"
        "const opts = {dataTransfer: dt, bubbles: true, cancelable: true};"
        "rows[0].dispatchEvent(new DragEvent('dragover', opts));"
        "rows[0].dispatchEvent(new DragEvent('drop', opts));"
    )
    first = (
        "return document.querySelector('[data-testid=combo-targets] [data-testid=combo-target-model]').value;"
    )
    assert await b.js(first) == "openai/gpt-4.1-mini"
    # and back with the keyboard-friendly arrow buttons
    await b.js(
        "[...document.querySelectorAll('[data-testid=combo-targets] li:first-child button')]"
        ".find(x => x.textContent === '↓').click();"
    )
    assert await b.js(first) == "openai/gpt-4o-mini"
    await shot(b, "10-combo-editor")
    await b.click("[data-testid=combo-save]")
    await b.wait_js(
        "return !document.querySelector('[data-testid=combo-save]');", what="the combo editor to close"
    )
    await b.wait_text(".page", "smart")
    await b.click("[data-testid=combo-test]")
    await b.wait_text("[data-testid=combo-test-result]", "answered", wait_s=20)
    await b.type("[data-testid=alias-pattern]", "fast-*")
    await b.type("[data-testid=alias-target]", "smart")
    await b.click("[data-testid=alias-add]")
    await b.wait_text(".page", "fast-*")
    await shot(b, "11-combos")


async def playground(b: Browser) -> None:
    await goto(b, "playground")
    await b.type("[data-testid=pg-model]", "smart")
    await b.click("[data-testid=pg-reset]")
    await b.click("[data-testid=pg-send]")
    await b.wait_js("return document.querySelector('[data-testid=pg-response]').dataset.done;", wait_s=20)
    await b.wait_text("[data-testid=pg-raw]", DEFAULT_TEXT)
    await b.wait_text("[data-testid=pg-served-by]", "openai")
    await b.wait_text("[data-testid=pg-upstream]", "POST ")
    # what the upstream really received, from the request log (the playground sends x-omniroute-debug)
    upstream_done = "return document.querySelector('[data-testid=pg-upstream-response]').dataset.done;"
    await b.wait_js(upstream_done, wait_s=20, what="the upstream's side from the request log")
    await b.wait_text("[data-testid=pg-upstream-sent]", "POST http://127.0.0.1")
    await b.wait_text("[data-testid=pg-upstream-sent]", "authorization: [REDACTED]")
    await b.wait_text("[data-testid=pg-upstream-response]", DEFAULT_TEXT)
    assert "sk-fake-upstream-key-0000" not in str(await b.js("return document.body.textContent;"))
    # another client format: the upstream still gets OpenAI Chat, the client gets Anthropic back
    await b.select("[data-testid=pg-format]", "anthropic")
    await b.click("[data-testid=pg-send]")
    await b.wait_text("[data-testid=pg-upstream]", "translated anthropic → openai-chat", wait_s=20)
    await b.wait_text("[data-testid=pg-raw]", '"type": "message"', wait_s=20)
    await b.wait_text("[data-testid=pg-raw]", DEFAULT_TEXT)
    await b.wait_js(upstream_done, wait_s=20, what="the upstream's side from the request log")
    await b.wait_text("[data-testid=pg-upstream-sent]", "/chat/completions")
    await b.wait_text("[data-testid=pg-upstream-sent]", '"messages": [')
    await b.wait_text("[data-testid=pg-upstream-response]", '"object": "chat.completion"')  # untranslated
    await shot(b, "20-playground")


async def test_dashboard_end_to_end_in_chromium(
    make_gateway: MakeGateway, make_fake_upstream: MakeFake, tmp_path: Path
) -> None:
    fake = await make_fake_upstream(prefix="/v1")
    h = await make_gateway()
    assert h.gw.setup_token
    root_logger = logging.getLogger("omniroute")
    root_logger.addHandler(console_buffer)  # the live console shows what the gateway logs
    try:
        async with chromium(tmp_path / "profile") as b:
            key = await run_wizard(b, h.url, h.gw.setup_token, fake.base_url)
            await shot(b, "05-home")
            await create_combo(b)
            async with httpx.AsyncClient(base_url=h.url) as http:
                admin = {"authorization": f"Bearer {h.admin_token}"}
                combos = (await http.get("/api/combos", headers=admin)).json()["combos"]
                assert [t["model"] for t in combos[0]["targets"]] == [
                    "openai/gpt-4o-mini",
                    "openai/gpt-4.1-mini",
                ]

            # a daily quota on the account, then its bar on the Quotas page
            await goto(b, "providers")
            await b.click("[data-provider=openai]")
            await b.click("[data-testid=account-limits]")
            await b.type("[data-limit=daily-tokens]", "100000")
            await b.click("[data-testid=limits-save]")
            await b.wait_js("return !document.querySelector('dialog');", what="the limits dialog to close")
            await shot(b, "13-providers")
            await goto(b, "quotas")
            await b.wait_text(".quota-grid", "/ 100,000")
            assert await b.js("return document.querySelectorAll('.meter-fill').length;") >= 1
            await b.wait_text(".quota-grid", "resets in")

            await goto(b, "keys")
            await b.type("[data-testid=key-name]", "ci")
            await b.click("[data-testid=key-more]")
            await b.type("[data-testid=key-scope-models]", "openai/*, smart")
            await b.type("[data-testid=key-rpm]", "30")
            await b.click("[data-testid=key-create]")
            await b.wait_text("[data-testid=key-once]", "omr_")
            scoped = str(await b.text("[data-testid=new-key]"))
            await b.wait_text("[data-testid=key-list]", "rpm: 30")
            await shot(b, "12-keys")
            async with httpx.AsyncClient(base_url=h.url) as http:
                mine = (await http.get("/v1/models", headers={"authorization": f"Bearer {scoped}"})).json()
                assert {m["id"] for m in mine["data"]} >= {"smart", "openai/gpt-4o-mini"}
                assert all(m["id"] == "smart" or m["id"].startswith("openai/") for m in mine["data"])

            await playground(b)

            await goto(b, "logs")
            await b.wait_text("[data-testid=request-log]", "smart")
            await b.click("[data-testid=request-log] tbody tr")
            await b.wait_text("[data-testid=request-detail]", "openai#")
            # the playground's request carried x-omniroute-debug: its payloads are in the detail
            await b.wait_text("[data-testid=payload-upstream-request]", "authorization: [REDACTED]")
            await b.wait_text("[data-testid=payload-upstream-response]", DEFAULT_TEXT)
            await shot(b, "30-logs")
            await b.click("[data-tab=console]")
            await b.wait_text("[data-testid=console-state]", "live")
            logging.getLogger("omniroute.test").warning("dashboard console marker")
            await b.wait_text("[data-testid=console]", "dashboard console marker")
            await shot(b, "31-console")

            await goto(b, "usage")
            await b.wait_text("[data-testid=usage-providers]", "openai")
            assert await b.js("return document.querySelectorAll('canvas.chart-canvas').length;") == 3
            await b.wait_text("[data-testid=stat-cards]", "100")  # success rate 100 %
            await shot(b, "40-usage")

            # Load budget, measured in the page: switching pages inside the app, and a full load of each page
            # (navigation start to the page drawn with its data). Best of three tries, so a busy test machine
            # measures the dashboard rather than its neighbours.
            timings: dict[str, list[int]] = {}
            for page in PAGES:
                for _ in range(3):
                    timings.setdefault(f"switch {page}", []).append(await goto(b, page))
                    if min(timings[f"switch {page}"]) < PAGE_BUDGET_MS:
                        break
                await shot(b, f"page-{page}")
            for page in PAGES:
                for attempt in range(3):
                    await b.get(f"{h.url}/?load={page}{attempt}#/{page}")
                    await ready(b, page)
                    ms = int(await b.js("return Number(document.body.dataset.bootMs);"))
                    timings.setdefault(f"load {page}", []).append(ms)
                    if ms < PAGE_BUDGET_MS:
                        break
            (ARTIFACTS / "timings.json").write_text(json.dumps(timings, indent=1))
            slow = {k: v for k, v in timings.items() if min(v) >= PAGE_BUDGET_MS}
            assert not slow, slow

            await goto(b, "usage")

            await b.select("[data-testid=lang]", "ar")
            await b.wait_js("return document.documentElement.dir === 'rtl';", what="right-to-left")
            await ready(b, "usage")
            assert "الاستخدام" in str(await b.text(".nav"))
            await shot(b, "50-arabic-rtl")
            await b.select("[data-testid=lang]", "en")
            await b.wait_js("return document.documentElement.dir === 'ltr';")

            await b.click("[data-testid=sign-out]")
            await ready(b, "login")
            await b.type("[data-testid=login-password]", PASSWORD)
            await b.click("[data-testid=login-submit]")
            await ready(b, "home")

            problems = [
                e["message"]
                for e in await b.logs("browser")
                if any(s in e["message"] for s in ("Content Security Policy", "Refused to", "Uncaught"))
            ]
            assert not problems, problems
            # every network request (chrome:// pages of the browser itself aside) went to the gateway
            urls = await b.requested_urls()
            assert any(u.startswith(h.url + "/api/") for u in urls)
            foreign = [
                u
                for u in urls
                if u.startswith(("http:", "https:", "ws:", "wss:")) and not u.startswith(h.url + "/")
            ]
            assert not foreign, foreign
    finally:
        root_logger.removeHandler(console_buffer)
    assert key
    await h.http.aclose()

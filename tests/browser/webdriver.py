"""A small async W3C WebDriver client for chromedriver (no selenium): start a headless Chromium, drive it
with CSS selectors, take screenshots, read its console and network logs.

Only what the dashboard tests need. Every wait polls the page with a deadline, so a test fails with the
selector it was waiting for instead of hanging.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
]


def browser_paths() -> tuple[str, str] | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WebDriverError(Exception):
    pass


class Browser:
    def __init__(self, http: httpx.AsyncClient, session: str) -> None:
        self.http = http
        self.session = session

    async def cmd(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        url = f"/session/{self.session}{path}"
        r = await self.http.request(method, url, json=payload if payload is not None else None)
        data = r.json()
        if r.status_code >= 400:
            raise WebDriverError(f"{method} {path}: {json.dumps(data.get('value'))[:600]}")
        return data.get("value")

    # navigation and scripts ---------------------------------------------------------------------------------

    async def get(self, url: str) -> None:
        await self.cmd("POST", "/url", {"url": url})

    async def js(self, script: str, *args: Any) -> Any:
        return await self.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    async def wait_js(self, script: str, *args: Any, wait_s: float = 10.0, what: str = "") -> Any:
        """Poll `script` (a function body returning a value) until it returns something truthy."""
        last: Any = None
        with trio.move_on_after(wait_s):
            while True:
                last = await self.js(script, *args)
                if last:
                    return last
                await trio.sleep(0.05)
        raise WebDriverError(f"timed out waiting for {what or script!r} (last: {last!r})")

    # elements -----------------------------------------------------------------------------------------------

    async def find(self, css: str, wait_s: float = 10.0) -> str:
        with trio.move_on_after(wait_s):
            while True:
                try:
                    value = await self.cmd("POST", "/element", {"using": "css selector", "value": css})
                    return str(value[ELEMENT])
                except WebDriverError:
                    await trio.sleep(0.05)
        raise WebDriverError(f"no element {css!r} after {wait_s}s")

    async def click(self, css: str) -> None:
        el = await self.find(css)
        # centre it first: chromedriver's own scrolling can leave it under the page's sticky top bar
        await self.js("arguments[0].scrollIntoView({block: 'center'});", {ELEMENT: el})
        await self.cmd("POST", f"/element/{el}/click", {})

    async def type(self, css: str, text: str, *, clear: bool = True) -> None:
        el = await self.find(css)
        if clear:
            await self.cmd("POST", f"/element/{el}/clear", {})
        await self.cmd("POST", f"/element/{el}/value", {"text": text})

    async def select(self, css: str, value: str) -> None:
        await self.find(css)
        await self.js(
            "const el = document.querySelector(arguments[0]); el.value = arguments[1];"
            "el.dispatchEvent(new Event('change', {bubbles: true}));",
            css,
            value,
        )

    async def text(self, css: str) -> str:
        el = await self.find(css)
        return str(await self.cmd("GET", f"/element/{el}/text"))

    async def wait_text(self, css: str, needle: str, wait_s: float = 10.0) -> str:
        script = "const el = document.querySelector(arguments[0]); return el ? el.textContent : '';"
        last = ""
        with trio.move_on_after(wait_s):
            while True:
                last = str(await self.js(script, css))
                if needle in last:
                    return last
                await trio.sleep(0.05)
        raise WebDriverError(f"{css!r} never contained {needle!r}; last text: {last[:500]!r}")

    # evidence -----------------------------------------------------------------------------------------------

    async def screenshot(self, path: Path) -> None:
        png = base64.b64decode(await self.cmd("GET", "/screenshot"))
        path.parent.mkdir(parents=True, exist_ok=True)
        await trio.Path(path).write_bytes(png)

    async def logs(self, kind: str) -> list[dict[str, Any]]:
        """chromedriver's log buffers ("browser": console; "performance": DevTools network events)."""
        return list(await self.cmd("POST", "/se/log", {"type": kind}))

    async def requested_urls(self) -> list[str]:
        urls = []
        for entry in await self.logs("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                urls.append(message["params"]["request"]["url"])
        return urls


@asynccontextmanager
async def chromium(profile_dir: Path) -> AsyncIterator[Browser]:
    paths = browser_paths()
    assert paths is not None
    binary, driver = paths
    port = _free_port()
    proc = await trio.lowlevel.open_process(
        [driver, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            with trio.fail_after(20):
                while True:
                    try:
                        if (await http.get("/status")).json()["value"]["ready"]:
                            break
                    except httpx.TransportError:
                        pass
                    await trio.sleep(0.05)
            caps = {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": binary,
                    "args": [*CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}"],
                },
                "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"},
            }
            r = await http.post("/session", json={"capabilities": {"alwaysMatch": caps}})
            value = r.json()["value"]
            if "sessionId" not in value:
                raise WebDriverError(f"chromedriver refused the session: {value}")
            browser = Browser(http, value["sessionId"])
            try:
                yield browser
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(10):
                    await http.delete(f"/session/{browser.session}")
    finally:
        proc.terminate()
        with trio.CancelScope(shield=True):
            await proc.wait()

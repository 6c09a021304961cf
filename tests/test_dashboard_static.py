"""The dashboard's files: served with a strict CSP, looked up (never opened by path), free of inline script
and style and of any other origin, every UI string in every language, and working from inside the .pyz."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from omniroute_web import dashboard_api
from tests.conftest import ROOT, Harness

STATIC = ROOT / "omniroute_web" / "static"
SCRIPTS = sorted(STATIC.rglob("*.js"))
CATALOGS = sorted((STATIC / "i18n").glob("*.json"))
REQUIRED_LANGUAGES = {"en", "it", "pt-BR", "es", "zh-CN", "ar"}


def check_dashboard_headers(r: httpx.Response) -> None:
    csp = r.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    for name in ("script-src", "style-src", "connect-src"):
        assert directives[name] == "'self'", name  # no 'unsafe-inline', no other origin
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_pages_and_assets_carry_a_strict_content_security_policy(gateway: Harness) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        for path, kind in [
            ("/", "text/html"),
            ("/setup", "text/html"),
            ("/static/app.js", "text/javascript"),
            ("/static/style.css", "text/css"),
            ("/static/i18n/ar.json", "application/json"),
        ]:
            r = await http.get(path)
            assert r.status_code == 200, path
            assert r.headers["content-type"].startswith(kind), path
            check_dashboard_headers(r)
        r = await http.get("/static/app.js")
        again = await http.get("/static/app.js", headers={"if-none-match": r.headers["etag"]})
        assert again.status_code == 304
        assert not again.content


async def test_static_paths_are_looked_up_never_opened(gateway: Harness) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        for path in [
            "/static/../omniroute.py",
            "/static/%2e%2e/omniroute.py",
            "/static/..%2fapp.py",
            "/static/views/../../app.py",
            "/static//etc/passwd",
            "/static/nope.js",
            "/static/",
        ]:
            r = await http.get(path)
            assert r.status_code == 404, path
            assert b"import" not in r.content


def test_index_has_no_inline_script_or_style() -> None:
    html = (STATIC / "index.html").read_text()
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag
    assert not re.search(r"<script\b[^>]*>\s*[^<\s]", html)  # no script body
    assert "<style" not in html
    assert " style=" not in html
    assert not re.search(r"\son\w+=", html)  # no inline handlers


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(STATIC)))
def test_scripts_build_no_markup_from_strings_and_call_no_other_origin(path: Path) -> None:
    text = path.read_text()
    for banned in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        'setAttribute("style"',
        "setAttribute('style'",
    ):
        assert banned not in text, banned
    # the only absolute URL in the app is an example placeholder shown in a form
    urls = set(re.findall(r"https?://[^\s\"'`)]+", text)) - {"https://llm.example.com/v1"}
    assert not urls, urls
    for call in re.findall(r"(?:fetch|EventSource)\(\s*([^,)]+)", text):
        assert call.strip().startswith(("`/", '"/', "path")), call


def _catalog(path: Path) -> dict[str, str]:
    data = json.loads(path.read_text())
    assert isinstance(data, dict), path.name
    assert all(isinstance(v, str) and v for v in data.values()), path.name
    return data


def test_every_language_catalog_has_every_key_with_the_same_placeholders() -> None:
    assert {p.stem for p in CATALOGS} >= REQUIRED_LANGUAGES
    en = _catalog(STATIC / "i18n" / "en.json")
    for path in CATALOGS:
        other = _catalog(path)
        assert set(other) == set(en), (path.name, sorted(set(en) ^ set(other))[:20])
        for key, text in en.items():
            want = set(re.findall(r"\{(\w+)\}", text))
            assert set(re.findall(r"\{(\w+)\}", other[key])) == want, (path.name, key)


def test_every_string_the_scripts_ask_for_is_in_the_catalog() -> None:
    en = _catalog(STATIC / "i18n" / "en.json")
    used = set()
    for path in SCRIPTS:
        used |= set(re.findall(r"\bt\(\s*\"([a-z0-9_.-]+)\"", path.read_text()))
    # keys built from data: every value the code can produce
    app = (STATIC / "app.js").read_text()
    used |= set(re.findall(r"\"(nav\.[a-z_]+)\"", app))
    used |= {
        f"combos.s_{s}"
        for s in ("priority", "round-robin", "weighted", "random", "least-used", "p2c", "cost-optimized")
    }
    used |= {f"quotas.w_{w}" for w in ("5h", "daily", "weekly", "monthly")}
    used |= {f"health.state_{s}" for s in ("closed", "open", "half-open")}
    used |= {f"usage.range_{r}" for r in ("1h", "24h", "7d", "30d")}
    used |= {f"usage.by_{g}" for g in ("provider", "model", "key", "account")}
    used |= {f"settings.group_{g}" for g in ("routing", "resilience", "ai", "security", "logging", "server")}
    used |= {f"cli.steps_{tool}" for tool in ("cline", "cursor")}
    clitools = (ROOT / "omniroute_web" / "dashboard_clitools.py").read_text()
    used |= set(re.findall(r"\"(cli\.field\.[a-z_]+)\"", clitools))
    missing = sorted(k for k in used if k not in en)
    assert not missing, missing


def test_right_to_left_languages_are_switched_by_the_app() -> None:
    text = (STATIC / "i18n.js").read_text()
    assert '"ar"' in text
    assert '"he"' in text
    assert 'dir = RTL.has(lang) ? "rtl" : "ltr"' in text
    css = (STATIC / "style.css").read_text()
    # the layout is written with logical properties, so dir=rtl mirrors it without a second stylesheet
    assert "margin-left" not in css
    assert "padding-left" not in css
    assert "text-align: left" not in css


def test_static_tree_is_read_through_importlib_resources() -> None:
    files = dashboard_api.load_static()
    assert {"index.html", "app.js", "api.js", "style.css", "i18n/en.json", "views/usage.js"} <= set(files)
    assert files["app.js"].content_type.startswith("text/javascript")


@pytest.mark.slow
async def test_dashboard_is_served_from_inside_the_pyz(tmp_path: Path) -> None:
    pyz = tmp_path / "omniroute.pyz"
    env = {**os.environ, "PYTHON": sys.executable}
    done = await trio.run_process(
        ["sh", str(ROOT / "zipapp.sh"), str(pyz)],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    cmd = [
        sys.executable,
        "-I",
        "-S",
        str(pyz),
        "--data-dir",
        str(tmp_path / "d"),
        "--port",
        "0",
        "--no-open",
    ]
    proc = await trio.lowlevel.open_process(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    try:
        banner = b""
        with trio.fail_after(30):
            while b"Gemini base URL" not in banner:
                chunk = await proc.stderr.receive_some(4096)
                assert chunk, banner
                banner += chunk
        text = banner.decode()
        assert re.search(r"/setup#[\w-]{40,}", text), text
        match = re.search(r" on (http://\S+)", text)
        assert match, text
        async with httpx.AsyncClient(base_url=match.group(1)) as http:
            for path in ("/", "/static/app.js", "/static/views/playground.js", "/static/i18n/zh-CN.json"):
                r = await http.get(path)
                assert r.status_code == 200, path
                check_dashboard_headers(r)
            assert (await http.get("/static/app.js")).content == (STATIC / "app.js").read_bytes()
    finally:
        proc.terminate()
        await proc.wait()
        await proc.stderr.aclose()

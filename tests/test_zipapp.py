"""The single-file deployment: zipapp.sh builds a reproducible .pyz that serves on a bare CPython.

"Bare" = `python -I -S`: isolated mode and no site module, so not one installed package is importable; the
archive must bring everything (and chooses json, sqlite3 and the pure-Python AES-GCM by itself).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest
import trio

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _interpreters() -> list[str]:
    base = getattr(sys, "_base_executable", sys.executable)
    found = [base]
    for candidate in ("python3.10", "/root/.pyenv/versions/3.10.13/bin/python3.10"):
        path = shutil.which(candidate) or (candidate if os.path.exists(candidate) else None)
        works = path and subprocess.run([path, "-c", "pass"], capture_output=True).returncode == 0
        if works and path not in found:
            found.append(str(path))  # the oldest supported version, when this machine has it
            break
    return found


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pyz") / "omniroute.pyz"
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(["sh", str(ROOT / "zipapp.sh"), str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_build_is_reproducible_and_pure_python(pyz: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.pyz"
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(["sh", str(ROOT / "zipapp.sh"), str(again)], check=True, capture_output=True, env=env, timeout=300)
    assert hashlib.sha256(pyz.read_bytes()).hexdigest() == hashlib.sha256(again.read_bytes()).hexdigest()
    with zipfile.ZipFile(pyz) as zf:
        names = zf.namelist()
        assert names == sorted(names)
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert "__main__.py" in names and "omniroute.py" in names
    assert "omniroute_providers/catalog.json" in names
    assert not [n for n in names if n.endswith((".so", ".pyd", ".pyc", ".pth"))]
    assert not [n for n in names if n.startswith(("msgspec", "apsw", "cryptography"))]


@pytest.mark.parametrize("python", _interpreters())
async def test_pyz_serves_on_a_bare_cpython(pyz: Path, tmp_path: Path, python: str) -> None:
    log = tmp_path / "stderr.txt"
    data = tmp_path / "data"
    with open(log, "w") as sink:
        proc = subprocess.Popen(
            [python, "-I", "-S", str(pyz), "--data-dir", str(data), "--port", "0", "--demo"],
            stdout=subprocess.DEVNULL, stderr=sink,
        )
    try:
        url = key = ""
        with trio.fail_after(30):
            while not key:
                text = log.read_text()
                for line in text.splitlines():
                    if " on http://" in line:
                        url = line.split(" on ", 1)[1].split()[0]
                    if "first client key" in line:
                        key = line.split(": ")[1].strip()
                assert proc.poll() is None, text
                await trio.sleep(0.05)
        assert "codec: json, store: sqlite3, sealing: tlslite-ng" in log.read_text()
        async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {key}"}) as http:
            r = await http.post("/v1/chat/completions", json={"model": "echo", "messages": [{"role": "user", "content": "from the pyz"}]})
            assert r.json()["choices"][0]["message"]["content"] == "from the pyz"
            r = await http.post("/v1/messages", json={"model": "echo", "max_tokens": 9, "stream": True,
                                                       "messages": [{"role": "user", "content": "streamed"}]})
            assert "event: message_stop" in r.text
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_certificates_load_from_inside_the_zip_when_the_system_store_is_empty(pyz: Path) -> None:
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from omniroute_providers.upstream import ssl_context; "
        "print(ssl_context().cert_store_stats()['x509_ca'])"
    )
    env = {"SSL_CERT_FILE": "/nonexistent/ca.pem", "SSL_CERT_DIR": "/nonexistent"}
    out = subprocess.run(
        [getattr(sys, "_base_executable", sys.executable), "-I", "-S", "-c", probe, str(pyz)],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) > 50  # certifi's bundle, read from the archive

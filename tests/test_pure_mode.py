"""The fallback path: stdlib json + sqlite3 + pure-Python AES-GCM (OMNIROUTE_PURE=1), as inside the .pyz.

The codec and store are chosen when the kernel is imported, so the fallback runs in a child pytest over the
kernel tests and the end-to-end gateway tests. (The main run covers msgspec + apsw + cryptography.)
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

PURE_SUITE = [
    "tests/test_kernel.py",
    "tests/test_gateway_openai.py",
    "tests/test_server.py",
    "tests/test_resilience.py",
    "tests/test_payloads.py",
    "tests/security",
]


@pytest.mark.slow
def test_the_suite_passes_on_json_sqlite3_and_pure_aes(subprocess_env: dict[str, str]) -> None:
    env = {**subprocess_env, "OMNIROUTE_PURE": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *PURE_SUITE],
        capture_output=True, text=True, timeout=600, env=env, cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "[100%]" in out.stdout and out.stdout.count(".") > 50  # ran, all passed (-q hides the summary)

"""F-03: the static gates. Ruff's bandit rules (S: exec/eval, shell=True, pickle, yaml.load, hard-coded
secrets, SQL built from strings, bind-all, weak hashes...) find nothing in the source, and pip-audit finds no
known vulnerability in the installed environment.

A finding is fixed, or suppressed on its line with `# noqa: S<nnn> - <why it is safe>` so the reason is
reviewed with the code.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.conftest import ROOT

SOURCE = ["omniroute.py", "omniroute_providers", "omniroute_web"]


def _have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@pytest.mark.skipif(not _have("ruff"), reason="ruff is not installed (pip install -e '.[test]')")
def test_ruff_security_rules_find_nothing_in_the_source() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--select",
            "S",
            "--no-cache",
            "--output-format",
            "concise",
            *SOURCE,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def _pypi_vulnerability_api_problem() -> str | None:
    """Why pip-audit's default service (PyPI's per-release JSON, which carries `vulnerabilities`) cannot be
    used from here, or None when it answers."""
    url = "https://pypi.org/pypi/pip/24.0/json"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            data = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return f"{url} answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"{url} is unreachable ({exc})"
    if "vulnerabilities" not in data:
        return f"{url} answered without a `vulnerabilities` field (a mirror, not PyPI?)"
    return None


@pytest.mark.slow
@pytest.mark.skipif(not _have("pip_audit"), reason="pip-audit is not installed (pip install -e '.[test]')")
def test_pip_audit_finds_no_known_vulnerability_in_the_environment() -> None:
    problem = _pypi_vulnerability_api_problem()
    if problem:
        pytest.skip(f"PyPI's vulnerability API cannot be reached, so nothing can be audited: {problem}")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip_audit",
            "--skip-editable",
            "--progress-spinner",
            "off",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    try:
        report = json.loads(out.stdout)
    except ValueError:
        if any(
            word in out.stderr
            for word in ("ConnectionError", "Max retries", "timed out", "Temporary failure")
        ):
            pytest.skip(f"pip-audit could not reach PyPI: {out.stderr.strip()[-300:]}")
        raise AssertionError(f"pip-audit failed: {out.stderr[-2000:]}") from None
    deps = report["dependencies"]
    audited = [d for d in deps if "skip_reason" not in d]
    if not audited:
        pytest.skip(
            f"PyPI's vulnerability API answered for none of the {len(deps)} installed packages "
            f"(e.g. {deps[0].get('skip_reason') if deps else 'no packages'})"
        )
    vulnerable = [
        f"{d['name']} {d['version']}: "
        + ", ".join(
            v["id"] + (f" (fixed in {v['fix_versions']})" if v.get("fix_versions") else "")
            for v in d["vulns"]
        )
        for d in audited
        if d.get("vulns")
    ]
    assert not vulnerable, "known vulnerabilities:\n" + "\n".join(vulnerable)

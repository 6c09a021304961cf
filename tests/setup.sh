#!/bin/sh
# Install everything the test suite needs: .venv with the package and its test extras, the browser the
# dashboard tests drive (when the machine lacks it) and the coding agents of tests/clients. The README's test
# command runs this, then pytest.
set -eu
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[fast,test]'
sh tests/install_browser.sh
sh tests/install_clients.sh || echo "tests/install_clients.sh failed: the agent tests in tests/clients will skip" >&2

#!/bin/sh
# Install everything the test suite needs into .venv (and the browser the dashboard tests drive, when the
# machine lacks it), then run the whole suite. Extra arguments go to pytest.
set -eu
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[fast,test]'
if [ -f tests/install_browser.sh ]; then
    sh tests/install_browser.sh
fi
sh tests/install_clients.sh || echo "tests/install_clients.sh failed: the agent tests in tests/clients will skip" >&2
exec .venv/bin/python -m pytest "$@"

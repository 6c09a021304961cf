#!/bin/sh
# Install the four coding agents that tests/clients drives (Claude Code, Codex CLI, Gemini CLI, opencode) from
# the npm registry into the project-local prefix .clients/ (git-ignored). Pinned versions, so a run is
# reproducible; a stamp file makes a second run a no-op. Needs node + npm; without them it says so and exits 0
# (the client tests then skip). Exit status is non-zero only when npm itself fails.
set -eu
cd "$(dirname "$0")/.."
PREFIX=.clients
PACKAGES="@anthropic-ai/claude-code@2.1.330 @openai/codex@0.169.0 @google/gemini-cli@0.61.0 opencode-ai@1.18.33"
STAMP="$PREFIX/installed.txt"

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "install_clients: node/npm not found; the tests in tests/clients will skip" >&2
    exit 0
fi
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PACKAGES" ]; then
    missing=""
    for bin in claude codex gemini opencode; do
        [ -x "$PREFIX/node_modules/.bin/$bin" ] || missing="$missing $bin"
    done
    [ -z "$missing" ] && exit 0
fi
mkdir -p "$PREFIX"
# A package.json of its own keeps npm from walking up into the repository; no audit/fund/update chatter.
[ -f "$PREFIX/package.json" ] || echo '{"name": "omniroute-test-clients", "private": true}' >"$PREFIX/package.json"
# shellcheck disable=SC2086  # PACKAGES is a word list on purpose
npm install --prefix "$PREFIX" --no-audit --no-fund --no-update-notifier --loglevel=error --save-exact $PACKAGES
echo "$PACKAGES" >"$STAMP"

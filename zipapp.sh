#!/bin/sh
# Build dist/omniroute.pyz: our code plus its pure-Python dependencies, runnable on a bare CPython >= 3.10
# (`python3 dist/omniroute.pyz`). Reproducible: pinned dependency versions, entries in sorted order, fixed
# timestamps and permissions, no bytecode. msgspec/apsw/cryptography are left out on purpose: the .pyz uses
# the stdlib json/sqlite3 and the bundled pure-Python AES-GCM (tlslite-ng).
#
#   ./zipapp.sh [OUTPUT]          default OUTPUT: dist/omniroute.pyz
#   PYTHON=python3.12 ./zipapp.sh  interpreter used to run pip (the archive itself is version-independent)
set -eu
cd "$(dirname "$0")"
OUT=${1:-dist/omniroute.pyz}
PYTHON=${PYTHON:-python3}
BUILD=$(mktemp -d "${TMPDIR:-/tmp}/omniroute-pyz.XXXXXX")
trap 'rm -rf "$BUILD"' EXIT

# Pinned so that two builds from the same commit are byte-identical. exceptiongroup is what trio needs on
# Python 3.10 (pip on a newer interpreter would skip it by its version marker).
cat > "$BUILD/pins.txt" <<'PINS'
h11==0.16.0
trio==0.35.0
attrs==26.1.0
outcome==1.3.0.post0
sniffio==1.3.1
sortedcontainers==2.4.0
idna==3.20
exceptiongroup==1.3.1
typing_extensions==4.16.0
certifi==2026.10.18
tlslite-ng==0.8.2
ecdsa==0.19.2
six==1.17.0
PINS

"$PYTHON" -m pip install --quiet --disable-pip-version-check --no-compile --no-deps --only-binary=:all: \
    --target "$BUILD/app" -r "$BUILD/pins.txt"

cp omniroute.py "$BUILD/app/"
for pkg in omniroute_providers omniroute_web; do
    mkdir -p "$BUILD/app/$pkg"
    (cd "$pkg" && find . -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print | while read -r f; do
        mkdir -p "$BUILD/app/$pkg/$(dirname "$f")"
        cp "$f" "$BUILD/app/$pkg/$f"
    done)
done
cat > "$BUILD/app/__main__.py" <<'MAIN'
import sys

import omniroute

sys.exit(omniroute.main())
MAIN

# Keep licences, drop what only pip needs (and anything that is not pure Python).
rm -rf "$BUILD/app/bin"
find "$BUILD/app" -name '__pycache__' -type d -prune -exec rm -rf {} +
find "$BUILD/app" -path '*.dist-info/*' ! -iname '*licen[cs]e*' ! -iname 'METADATA' ! -name 'top_level.txt' -type f -delete
if find "$BUILD/app" \( -name '*.so' -o -name '*.pyd' -o -name '*.dylib' -o -name '*.pth' \) | grep -q .; then
    echo "zipapp.sh: a compiled module or .pth file slipped in:" >&2
    find "$BUILD/app" \( -name '*.so' -o -name '*.pyd' -o -name '*.dylib' -o -name '*.pth' \) >&2
    exit 1
fi

mkdir -p "$(dirname "$OUT")"
"$PYTHON" - "$BUILD/app" "$OUT" <<'PY'
import os
import sys
import zipfile

src, out = sys.argv[1], sys.argv[2]
paths = []
for root, _dirs, files in os.walk(src):
    for name in files:
        full = os.path.join(root, name)
        paths.append(os.path.relpath(full, src).replace(os.sep, "/"))
tmp = out + ".tmp"
with open(tmp, "wb") as fh:
    fh.write(b"#!/usr/bin/env python3\n")
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for rel in sorted(paths):
            info = zipfile.ZipInfo(rel, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(os.path.join(src, rel), "rb") as data:
                zf.writestr(info, data.read(), compresslevel=9)
os.chmod(tmp, 0o755)
os.replace(tmp, out)
PY
echo "built $OUT ($(wc -c < "$OUT") bytes, sha256 $("$PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$OUT"))"

"""The kernel's sections on their own: codec, store, sealing, keys, redaction, SSE decoding.

These also run under OMNIROUTE_PURE=1 (see test_pure_mode.py), so each assertion holds for msgspec+apsw and
for json+sqlite3 alike.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import omniroute
from omniroute import (
    JSONDecodeError,
    Sealer,
    SecretKeyError,
    Store,
    dumps,
    hash_secret,
    key_prefix,
    loads,
    migrate,
    new_client_key,
    redact,
    register_secret,
    verify_secret,
)
from omniroute_providers.formats.sse import SSEDecoder

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_codec_round_trips_json(value: object) -> None:
    assert loads(dumps(value)) == value


def test_codec_encodes_dataclasses_and_rejects_bad_input() -> None:
    @dataclass
    class Point:
        x: int
        label: str | None = None

    assert loads(dumps(Point(1))) == {"x": 1, "label": None}
    for bad in (b"{", b"[1,]", b"\xff", b"{}x", b"[" * 100_000):
        with pytest.raises(JSONDecodeError):
            loads(bad)


def test_codec_matches_the_mode() -> None:
    assert omniroute.CODEC == ("json" if omniroute.PURE else "msgspec")


def test_store_migrates_once_and_records_names(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "db.sqlite"))
    try:
        names = store.read(lambda db: [r[0] for r in db.execute("SELECT name FROM migrations")])
        assert names == [m[0] for m in omniroute.MIGRATIONS]
        assert store.read(lambda db: migrate(db)) == []  # nothing left to apply
        assert store.driver == ("sqlite3" if omniroute.PURE else "apsw")
        mode = store.read(lambda db: db.execute("PRAGMA journal_mode")[0][0])
        assert mode.lower() == "wal"
        assert oct((tmp_path / "db.sqlite").stat().st_mode & 0o777) == "0o600"
    finally:
        store.close()


def test_failed_migration_rolls_back_and_can_be_retried(tmp_path: Path) -> None:
    db = omniroute.Db(str(tmp_path / "m.sqlite"))

    def broken(d: omniroute.Db) -> None:
        d.execute("CREATE TABLE half (x INTEGER)")
        raise RuntimeError("killed mid-migration")

    with pytest.raises(RuntimeError):
        migrate(db, [("0001_broken", broken)])
    assert not db.execute("SELECT name FROM sqlite_master WHERE name = 'half'")  # rolled back
    migrate(db, [("0001_broken", lambda d: d.execute("CREATE TABLE half (x INTEGER)"))])
    assert db.execute("SELECT name FROM migrations") == [("0001_broken",)]
    db.close()


def test_writer_batches_rows_and_survives_a_bad_one(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "w.sqlite"))
    try:
        store.write(lambda db: db.execute("CREATE TABLE t (n INTEGER NOT NULL)"))
        for n in range(300):
            store.submit(lambda db, n=n: db.execute("INSERT INTO t VALUES (?)", (n,)))
        store.submit(lambda db: db.execute("INSERT INTO t VALUES (NULL)"))  # violates NOT NULL
        store.submit(lambda db: db.execute("INSERT INTO t VALUES (?)", (999,)))
        store.flush()
        assert store.read(lambda db: db.execute("SELECT COUNT(*) FROM t")[0][0]) == 301
        assert store.write_errors == 1
        with pytest.raises(ValueError, match="boom"):
            store.write(lambda db: (_ for _ in ()).throw(ValueError("boom")))
    finally:
        store.close()


def test_concurrent_readers_and_the_writer(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "c.sqlite"))
    try:
        store.write(lambda db: db.execute("CREATE TABLE t (n INTEGER)"))
        errors: list[BaseException] = []

        def reader() -> None:
            try:
                for _ in range(200):
                    store.read(lambda db: db.execute("SELECT COUNT(*) FROM t"))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=reader) for _ in range(4)]
        for t in threads:
            t.start()
        for n in range(500):
            store.submit(lambda db, n=n: db.execute("INSERT INTO t VALUES (?)", (n,)))
        for t in threads:
            t.join()
        store.flush()
        assert not errors
        assert store.read(lambda db: db.execute("SELECT COUNT(*) FROM t")[0][0]) == 500
    finally:
        store.close()


@pytest.mark.parametrize(("writer", "reader"), [("cryptography", "tlslite-ng"), ("tlslite-ng", "cryptography")])
def test_both_aes_gcm_backends_read_each_other(writer: str, reader: str) -> None:
    pytest.importorskip("cryptography")
    key = os.urandom(32)
    sealed = Sealer(key, writer).seal("sk-secret-value-123")
    assert Sealer(key, writer).backend == writer
    assert Sealer(key, reader).open(sealed) == "sk-secret-value-123"


def test_pure_aes_gcm_loads_without_the_tls_stack() -> None:
    """tlslite-ng's package __init__ imports its whole TLS stack (about 7 MB resident on a Raspberry Pi
    sized budget); the sealer needs only its AES modules."""
    probe = (
        "import os, sys, omniroute\n"
        "s = omniroute.Sealer(os.urandom(32), 'tlslite-ng')\n"
        "assert s.open(s.seal('sk-1')) == 'sk-1'\n"
        "print(sorted(m for m in sys.modules if m.startswith('tlslite')))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    loaded = out.stdout
    assert "tlslite.utils.python_aesgcm" in loaded
    assert "tlslite.api" not in loaded and "tlslite.tlsconnection" not in loaded


def test_sealed_credentials_do_not_open_without_the_key() -> None:
    sealed = Sealer(os.urandom(32)).seal("sk-secret-value-123")
    assert "sk-secret" not in sealed
    with pytest.raises(SecretKeyError):
        Sealer(os.urandom(32)).open(sealed)
    with pytest.raises(SecretKeyError):
        Sealer(os.urandom(32)).open("plaintext-not-sealed")


def test_sealing_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    first = omniroute.load_sealing_key(str(tmp_path))
    assert oct((tmp_path / "secret.key").stat().st_mode & 0o777) == "0o600"
    assert omniroute.load_sealing_key(str(tmp_path)) == first
    assert len(omniroute.load_sealing_key(str(tmp_path), "a passphrase")) == 32


def test_client_keys_are_checked_by_salted_hash() -> None:
    full, prefix = new_client_key()
    assert key_prefix(full) == prefix and len(full) > 50
    salt, digest = hash_secret(full)
    assert verify_secret(full, salt, digest)
    assert not verify_secret(full[:-1] + "x", salt, digest)
    assert hash_secret(full)[1] != digest  # a new salt, a new hash
    assert key_prefix("sk-whatever") is None


def test_redaction_masks_every_credential_shape() -> None:
    register_secret("exact-secret-registered-123")
    text = (
        'Authorization: Bearer abc.def.ghi x-api-key: sk-ant-api03-AAAAAAAAAAAAAAAAAAAA '
        '{"api_key": "k1", "refresh_token": "r2", "password": "p3"} '
        "https://x/v1beta/models/m:generateContent?key=AIzaSyA-1234567890abcdefghijklmnopqrstu "
        "leaked exact-secret-registered-123 and sk-proj-ABCDEFGHIJKLMNOPQRSTUV"
    )
    clean = redact(text)
    for secret in ("abc.def.ghi", "sk-ant-api03", '"k1"', '"r2"', '"p3"', "AIzaSy", "exact-secret", "sk-proj-ABC"):
        assert secret not in clean, secret
    assert clean.count("[REDACTED]") >= 8


def test_log_records_are_redacted_with_their_arguments(caplog: pytest.LogCaptureFixture) -> None:
    register_secret("sk-logged-canary-000000")
    logger = logging.getLogger("omniroute.test")
    handler = logging.Handler()
    records: list[str] = []
    handler.emit = lambda r: records.append(r.getMessage())  # type: ignore[method-assign]
    handler.addFilter(omniroute.RedactingFilter())
    logger.addHandler(handler)
    try:
        logger.warning("calling with %s", "sk-logged-canary-000000")
    finally:
        logger.removeHandler(handler)
    assert records == ["calling with [REDACTED]"]


@settings(max_examples=200)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=30), st.sampled_from([b"\n", b"\r\n", b"\r"]))
def test_sse_decoding_does_not_depend_on_how_bytes_are_split(cuts: list[int], newline: bytes) -> None:
    frames = [
        b"event: a" + newline + b"data: {\"x\": 1}" + newline + newline,
        b": keep-alive" + newline + newline,
        b"data: line one" + newline + b"data: line two" + newline + newline,
        b"data: [DONE]" + newline + newline,
    ]
    raw = b"".join(frames)
    whole = SSEDecoder().feed(raw)
    pieces, pos = [], 0
    for cut in cuts:
        pieces.append(raw[pos : pos + cut])
        pos += cut
    pieces.append(raw[pos:])
    dec = SSEDecoder()
    split = [ev for piece in pieces for ev in dec.feed(piece)] + dec.close()
    assert [(e.event, e.data) for e in split] == [(e.event, e.data) for e in whole]
    assert [e.data for e in whole] == [b'{"x": 1}', b"line one\nline two", b"[DONE]"]

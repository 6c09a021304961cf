"""Hot-path benchmark: the gateway against direct calls to the same instant fake upstream, in one run.

    python bench/run.py                # the full table (about a minute)
    python bench/run.py --quick        # fewer requests, for a smoke check
    python bench/run.py --soak 600     # also stream for 10 minutes and report RSS over time

What it reports (this 2-core machine is noisy, so everything is a ratio or a difference within one run):
* CPU per request of the gateway process: user+sys from /proc/<pid>/stat over a scenario / requests served.
  This is the figure that survives noise; the issue targets are stated against it.
* added latency p50/p99 (gateway minus direct) at concurrency 1 and 16, and req/s for both;
* streaming, 50 chunks: added time to first byte, and the added gap between chunks on a paced stream;
  the instant stream once more with stream_coalesce_ms=0 (each piece relayed as it arrives), to show
  what the default 2 ms coalescing saves in CPU and adds in latency;
* translated paths (Anthropic client on an OpenAI upstream and back, passthrough) as CPU per stream;
* idle RSS, RSS after load, and the time from process start to the first correct answer.

The load client is a lean raw-socket HTTP/1.1 client (keep-alive, one connection per worker) so that it
steals as little CPU from the gateway as possible; the fake upstreams run in their own processes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TICK = os.sysconf("SC_CLK_TCK")
TEXT = "The quick brown fox jumps over the lazy dog. " * 5  # ~225 chars, split into 50 stream chunks


# ----------------------------------------------------------------------------------------------------------
# processes
# ----------------------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_fake(pace: float = 0.0) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.upstream",
            "--port",
            "0",
            "--print-port",
            "--chunks",
            "50",
            "--text",
            TEXT,
            "--pace",
            str(pace),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline().strip())
    return proc, port


def prepare_data_dir(data: Path, fake_port: int) -> None:
    from omniroute import Sealer, Store, load_sealing_key
    from omniroute_providers import manage
    from omniroute_providers.catalog import load_catalog

    data.mkdir(parents=True, exist_ok=True)
    store = Store(str(data / "omniroute.sqlite"))
    sealer = Sealer(load_sealing_key(str(data)))
    catalog = load_catalog()
    base = f"http://127.0.0.1:{fake_port}/v1"
    for provider in ("openai", "anthropic"):
        manage.add_account(
            store,
            sealer,
            catalog,
            manage.AccountInput(
                provider=provider, name="bench", key="sk-bench-000000000000", base_url=base, local=True
            ),
        )
    manage.save_combo(
        store,
        catalog,
        {
            "name": "trio",
            "strategy": "priority",
            "targets": ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5", "openai/gpt-4o"],
        },
    )
    store.close()


@dataclass
class GatewayProc:
    proc: subprocess.Popen[bytes]
    port: int
    key: str
    started: float
    log: Path


# What the README's install command leaves out of the test venv's packages: `cryptography` comes with the
# `crypto` extra (and with google-auth, a test dependency), not with `fast`. Shadowing it with a package
# that fails to import runs the gateway as a README install would.
NOT_IN_README_INSTALL = ("cryptography",)


def shadow_dir(parent: Path, packages: tuple[str, ...]) -> Path:
    shadow = parent / "shadowed-packages"
    for name in packages:
        (shadow / name).mkdir(parents=True, exist_ok=True)
        (shadow / name / "__init__.py").write_text(f"raise ImportError('{name} is shadowed by the bench')\n")
    return shadow


def start_gateway(
    data: Path, without: tuple[str, ...] = NOT_IN_README_INSTALL, settings: dict[str, str] | None = None
) -> GatewayProc:
    log = data / "gateway.log"
    env = dict(os.environ)
    env.update({f"OMNIROUTE_{k.upper()}": v for k, v in (settings or {}).items()})
    if without:
        env["PYTHONPATH"] = str(shadow_dir(data, without))
    started = time.perf_counter()
    with open(log, "w") as sink:
        proc = subprocess.Popen(
            # as the `omniroute` console script starts it (`-m omniroute` would also compile the kernel as
            # __main__ on every start)
            [
                sys.executable,
                "-c",
                "import sys, omniroute; sys.exit(omniroute.main())",
                "--data-dir",
                str(data),
                "--port",
                "0",
                "--log-level",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=sink,
            cwd=ROOT,
            env=env,
        )
    deadline = time.time() + 30
    port, key = 0, ""
    while time.time() < deadline and not (port and key):
        for line in log.read_text().splitlines():
            if " on http://" in line:
                port = int(line.split(" on http://", 1)[1].split()[0].rsplit(":", 1)[1])
            if "first client key" in line:
                key = line.split(": ")[1].strip()
        time.sleep(0.01)
    if not (port and key):
        raise SystemExit("gateway did not start: " + log.read_text())
    return GatewayProc(proc, port, key, started, log)


def backends(gw: GatewayProc) -> str:
    """The gateway's own start line: which codec, store and cipher it runs on."""
    for line in gw.log.read_text().splitlines():
        if "codec:" in line:
            return "codec:" + line.split("codec:", 1)[1].rstrip(")")
    return "(backends not logged)"


async def first_answer(gw: GatewayProc) -> float:
    """Seconds from process start to the first correct answer."""
    req = raw_request("/v1/chat/completions", chat(False, "openai/gpt-4o-mini"), gw.key)
    while True:
        body = await _try_once(gw.port, req)
        if body is not None and b"quick brown fox" in body:
            return time.perf_counter() - gw.started
        await trio.sleep(0.005)


async def _try_once(port: int, req: bytes) -> bytes | None:
    """The body of a 200 answer, or None (not listening yet, or not serving yet)."""
    try:
        c = Conn(await trio.open_tcp_stream("127.0.0.1", port))
        status, _, _, body = await c.exchange(req)
        await c.stream.aclose()
    except OSError:
        return None
    return body if status == 200 else None


async def idle_rss_with(data: Path, without: tuple[str, ...]) -> tuple[float, str]:
    """Idle RSS of a gateway started on `data` with `without` shadowed, one second after its first answer."""
    gw = start_gateway(data, without)
    try:
        await first_answer(gw)
        await trio.sleep(1.0)
        return rss_mb(gw.proc.pid), backends(gw)
    finally:
        gw.proc.terminate()
        gw.proc.wait()


# ----------------------------------------------------------------------------------------------------------
# a lean HTTP/1.1 client
# ----------------------------------------------------------------------------------------------------------


def raw_request(path: str, body: dict[str, object], key: str, extra: str = "") -> bytes:
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\nx-api-key: {key}\r\n"
        "anthropic-version: 2023-06-01\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n"
        f"{extra}\r\n"
    )
    return head.encode() + payload


class Conn:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buf = b""

    async def _more(self) -> None:
        data = await self.stream.receive_some(65536)
        if not data:
            raise ConnectionError("closed")
        self.buf += data

    async def exchange(self, raw: bytes) -> tuple[int, float, list[float], bytes]:
        """(status, time to first body byte, arrival time of each body chunk, body)."""
        t0 = time.perf_counter()
        await self.stream.send_all(raw)
        while b"\r\n\r\n" not in self.buf:
            await self._more()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status = int(head[9:12])
        lower = head.lower()
        arrivals: list[float] = []
        body = b""
        if b"transfer-encoding: chunked" in lower:
            while True:
                while b"\r\n" not in self.buf:
                    await self._more()
                line, rest = self.buf.split(b"\r\n", 1)
                size = int(line.split(b";")[0], 16)
                while len(rest) < size + 2:
                    await self._more()
                    line, rest = self.buf.split(b"\r\n", 1)
                self.buf = rest[size + 2 :]
                if size == 0:
                    break
                body += rest[:size]
                arrivals.append(time.perf_counter() - t0)
        else:
            length = int(lower.split(b"content-length: ")[1].split(b"\r\n")[0])
            while len(self.buf) < length:
                await self._more()
            body, self.buf = self.buf[:length], self.buf[length:]
            arrivals.append(time.perf_counter() - t0)
        return status, arrivals[0] if arrivals else 0.0, arrivals, body


@dataclass
class Result:
    name: str
    latencies: list[float] = field(default_factory=list)
    ttfb: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cpu: float = 0.0
    cpu_median: float = 0.0
    errors: int = 0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_load(
    name: str, port: int, raw: bytes, total: int, concurrency: int, pid: int | None, expect: bytes
) -> Result:
    result = Result(name)
    per_worker = total // concurrency
    conns = [Conn(await trio.open_tcp_stream("127.0.0.1", port)) for _ in range(concurrency)]
    for c in conns:  # warm the connection (and the gateway's upstream pool)
        await c.exchange(raw)

    async def worker(conn: Conn) -> None:
        for _ in range(per_worker):
            status, first, arrivals, body = await conn.exchange(raw)
            if status != 200 or expect not in body:
                result.errors += 1
            result.latencies.append(arrivals[-1])
            result.ttfb.append(first)
            result.gaps.extend(b - a for a, b in itertools.pairwise(arrivals))

    cpu0 = cpu_seconds(pid) if pid else 0.0
    t0 = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for c in conns:
            nursery.start_soon(worker, c)
    result.seconds = time.perf_counter() - t0
    result.cpu = (cpu_seconds(pid) - cpu0) if pid else 0.0
    for c in conns:
        await c.stream.aclose()
    return result


async def rounds(
    name: str, port: int, raw: bytes, total: int, concurrency: int, pid: int | None, expect: bytes, count: int
) -> Result:
    """`count` rounds of `total / count` requests; latencies pooled. CPU per request: the best round (the
    least disturbed by the other tenants of this VM) and the median round."""
    merged = Result(name)
    per_request: list[float] = []
    for _ in range(count):
        r = await run_load(name, port, raw, max(concurrency, total // count), concurrency, pid, expect)
        merged.latencies += r.latencies
        merged.ttfb += r.ttfb
        merged.gaps += r.gaps
        merged.seconds += r.seconds
        merged.errors += r.errors
        per_request.append(r.cpu / max(1, len(r.latencies)))
    merged.cpu = min(per_request) * len(merged.latencies)
    merged.cpu_median = statistics.median(per_request)
    return merged


# ----------------------------------------------------------------------------------------------------------
# scenarios
# ----------------------------------------------------------------------------------------------------------


def chat(stream: bool, model: str) -> dict[str, object]:
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": "benchmark prompt"}]}


def messages(stream: bool, model: str) -> dict[str, object]:
    return {**chat(stream, model), "max_tokens": 256}


def compile_bytecode() -> None:
    """Measure the gateway as installed (pip writes .pyc files), not as a source tree run with
    PYTHONDONTWRITEBYTECODE: compiling every module at start leaves megabytes of fragmented heap behind."""
    import compileall

    for part in ("omniroute_providers", "omniroute_web"):
        compileall.compile_dir(str(ROOT / part), quiet=1)
    compileall.compile_file(str(ROOT / "omniroute.py"), quiet=1)


async def main_async(args: argparse.Namespace) -> None:
    compile_bytecode()
    n = 400 if args.quick else args.requests
    s = 100 if args.quick else args.streams
    k = 2 if args.quick else args.rounds
    fake, fake_port = start_fake()
    paced, paced_port = start_fake(pace=0.005)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        prepare_data_dir(data, fake_port)
        with_crypto = Path(tmp) / "with-crypto"
        prepare_data_dir(with_crypto, fake_port)
        idle_with_crypto = await idle_rss_with(with_crypto, ())
        gw = start_gateway(data)
        pid = gw.proc.pid
        try:
            first = await first_answer(gw)
            await trio.sleep(1.0)
            idle_rss = rss_mb(pid)

            rows: list[tuple[str, Result, Result | None]] = []
            fox = b"quick"
            direct_oc = raw_request("/v1/chat/completions", chat(False, "gpt-4o-mini"), "x")
            gw_oc = raw_request("/v1/chat/completions", chat(False, "openai/gpt-4o-mini"), gw.key)
            for conc in (1, 16):
                d = await rounds(f"direct c={conc}", fake_port, direct_oc, n, conc, None, fox, k)
                g = await rounds(f"gateway c={conc}", gw.port, gw_oc, n, conc, pid, fox, k)
                rows.append((f"OpenAI->OpenAI JSON c={conc}", g, d))
            combo = raw_request("/v1/chat/completions", chat(False, "trio"), gw.key)
            plain = await rounds("plain c=1", gw.port, gw_oc, n, 1, pid, fox, k)
            via_combo = await rounds("combo c=1", gw.port, combo, n, 1, pid, fox, k)
            rows.append(("3-target combo JSON c=1 (vs plain)", via_combo, plain))
            direct_st = raw_request("/v1/chat/completions", chat(True, "gpt-4o-mini"), "x")
            gw_st = raw_request("/v1/chat/completions", chat(True, "openai/gpt-4o-mini"), gw.key)
            for conc in (1, 16):
                d = await rounds(f"direct stream c={conc}", fake_port, direct_st, s, conc, None, b"[DONE]", k)
                g = await rounds(f"gateway stream c={conc}", gw.port, gw_st, s, conc, pid, b"[DONE]", k)
                rows.append((f"OpenAI->OpenAI SSE 50 chunks c={conc}", g, d))
            # paced stream: the added gap between chunks (an instant stream coalesces chunks)
            d = await run_load("direct paced", paced_port, direct_st, 20, 1, None, b"[DONE]")
            paced_gw_data = Path(tmp) / "paced"
            prepare_data_dir(paced_gw_data, paced_port)
            gw2 = start_gateway(paced_gw_data)
            try:
                raw2 = raw_request("/v1/chat/completions", chat(True, "openai/gpt-4o-mini"), gw2.key)
                g = await run_load("gateway paced", gw2.port, raw2, 20, 1, gw2.proc.pid, b"[DONE]")
            finally:
                gw2.proc.terminate()
                gw2.proc.wait()
            rows.append(("paced SSE (5 ms/chunk) c=1", g, d))
            # the same instant stream relayed piece by piece as it arrives (stream_coalesce_ms=0)
            eager_data = Path(tmp) / "eager"
            prepare_data_dir(eager_data, fake_port)
            gw3 = start_gateway(eager_data, settings={"stream_coalesce_ms": "0"})
            try:
                raw3 = raw_request("/v1/chat/completions", chat(True, "openai/gpt-4o-mini"), gw3.key)
                d = await rounds("direct stream c=1", fake_port, direct_st, s, 1, None, b"[DONE]", k)
                g = await rounds("uncoalesced c=1", gw3.port, raw3, s, 1, gw3.proc.pid, b"[DONE]", k)
            finally:
                gw3.proc.terminate()
                gw3.proc.wait()
            rows.append(("OpenAI->OpenAI SSE c=1, coalescing off", g, d))

            translated = [
                (
                    "Anthropic->OpenAI SSE 50 chunks",
                    "/v1/messages",
                    messages(True, "openai/gpt-4o-mini"),
                    b"message_stop",
                ),
                (
                    "OpenAI->Anthropic SSE 50 chunks",
                    "/v1/chat/completions",
                    chat(True, "anthropic/claude-sonnet-4-5"),
                    b"[DONE]",
                ),
                ("Anthropic->OpenAI JSON", "/v1/messages", messages(False, "openai/gpt-4o-mini"), fox),
                (
                    "Anthropic->Anthropic SSE passthrough",
                    "/v1/messages",
                    messages(True, "anthropic/claude-sonnet-4-5"),
                    b"message_stop",
                ),
            ]
            for label, path, body, expect in translated:
                raw = raw_request(path, body, gw.key)
                count = n if b"SSE" not in label.encode() else s
                g = await rounds(label, gw.port, raw, count, 1, pid, expect, k)
                rows.append((label + " c=1", g, None))
            loaded_rss = rss_mb(pid)

            soak: list[tuple[int, float]] = []
            if args.soak:
                t_end = time.perf_counter() + args.soak
                while time.perf_counter() < t_end:
                    await run_load("soak", gw.port, gw_st, 160, 16, None, b"[DONE]")
                    soak.append((int(args.soak - (t_end - time.perf_counter())), rss_mb(pid)))
            running_on = backends(gw)
        finally:
            gw.proc.terminate()
            gw.proc.wait()
            fake.terminate()
            paced.terminate()

    report(rows, first, idle_rss, loaded_rss, soak, running_on, idle_with_crypto)


def report(
    rows: list[tuple[str, Result, Result | None]],
    first_answer: float,
    idle_rss: float,
    loaded_rss: float,
    soak: list[tuple[int, float]],
    running_on: str,
    idle_with_crypto: tuple[float, str],
) -> None:
    ms = 1000.0
    version = sys.version.split()[0]
    print(f"\nomniroute bench  python {version}  gateway {running_on} (as the README installs it)")
    print(
        f"first correct answer {first_answer * ms:.0f} ms after process start; idle RSS {idle_rss:.1f} MB, "
        f"after load {loaded_rss:.1f} MB"
    )
    print(f"idle RSS with the crypto extra installed: {idle_with_crypto[0]:.1f} MB ({idle_with_crypto[1]})\n")
    head = (
        f"{'scenario':40} {'CPU ms/req':>10} {'(median)':>8} {'req/s gw':>9} {'req/s dir':>9} {'+p50 ms':>8} "
        f"{'+p99 ms':>8} {'+TTFB p50':>9} {'+gap p50/p99 ms':>16} {'err':>4}"
    )
    print(head)
    print("-" * len(head))
    for label, g, d in rows:
        cpu = g.cpu / max(1, len(g.latencies)) * ms
        med = f"{g.cpu_median * ms:8.3f}" if g.cpu_median else " " * 8
        if d is None:
            blank = f"{'':>9} {'':>8} {'':>8} {'':>9} {'':>16}"
            print(f"{label:40} {cpu:10.3f} {med} {g.rps:9.0f} {blank} {g.errors:4d}")
            continue
        add50 = (pct(g.latencies, 0.5) - pct(d.latencies, 0.5)) * ms
        add99 = (pct(g.latencies, 0.99) - pct(d.latencies, 0.99)) * ms
        ttfb = (pct(g.ttfb, 0.5) - pct(d.ttfb, 0.5)) * ms
        gap = ""
        if "paced" in label:
            gap50 = (pct(g.gaps, 0.5) - pct(d.gaps, 0.5)) * ms
            gap = f"{gap50:.3f}/{(pct(g.gaps, 0.99) - pct(d.gaps, 0.99)) * ms:.3f}"
        print(
            f"{label:40} {cpu:10.3f} {med} {g.rps:9.0f} {d.rps:9.0f} {add50:8.3f} {add99:8.3f} {ttfb:9.3f} "
            f"{gap:>16} {g.errors + d.errors:4d}"
        )
    if soak:
        print(
            "\nsoak (seconds, RSS MB):",
            ", ".join(f"{t}s {r:.1f}" for t, r in soak[:: max(1, len(soak) // 12)]),
        )
    print(
        "\nCPU ms/req: gateway process user+sys per request, best round (median round beside it). "
        "+p50/+p99: gateway latency minus direct to the same fake. req/s at the stated concurrency."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="non-streaming requests per scenario")
    parser.add_argument("--streams", type=int, default=400, help="streams per streaming scenario")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per scenario (median CPU is reported)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--soak", type=int, default=0, help="seconds of streaming load to watch RSS over")
    args = parser.parse_args()
    trio.run(main_async, args)


if __name__ == "__main__":
    main()

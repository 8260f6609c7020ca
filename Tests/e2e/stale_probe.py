#!/usr/bin/env python3
"""Read-your-writes probe across two `mcp-session-server` instances over one PostgreSQL schema,
or one Redis with `--redis URL` (issue 14, point 2).

Each client has its own MCP session. It runs N pairs: `state_set {key: k, value: <fresh>}` on A,
waits for the answer, then `state_get {key: k}` on B with the same `Mcp-Session-Id`. A read that
returns anything but the value just acknowledged is stale; the probe then rereads B until it
sees the value, and records how long after the acknowledgement that took.

    python3 Tests/e2e/stale_probe.py --binary .build/debug/mcp-session-server \
        --postgres postgres://mcp:mcp@127.0.0.1:54329/mcp_sessions --pairs 2000 --clients 1

Or against servers already running: `--a URL --b URL`. Raw HTTP (httpx2) with JSON answers
(`Accept: application/json`), so the client costs little next to the servers.

Prints one summary line (and JSON with `--json`); `--events FILE` writes every stale read with
wall-clock (CLOCK_REALTIME, ns) timestamps of the set's request/answer and the stale/fresh reads,
to line up with server-side instrumentation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx2

PROTOCOL = "2025-11-25"
HEADERS = {"content-type": "application/json", "accept": "application/json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary: str, storage: str, extra: list[str], env: dict[str, str] | None = None, name: str = "x"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.log = tempfile.NamedTemporaryFile(prefix=f"stale-probe-{name}-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--storage", storage, *extra],
            stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {Path(self.log.name).read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not listen")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def rpc(id_: int, method: str, params: dict | None = None) -> bytes:
    message = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        message["params"] = params
    return json.dumps(message).encode()


async def call(http: httpx2.AsyncClient, url: str, sid: str, id_: int, name: str, arguments: dict) -> str:
    response = await http.post(
        url, content=rpc(id_, "tools/call", {"name": name, "arguments": arguments}),
        headers={**HEADERS, "mcp-session-id": sid, "mcp-protocol-version": PROTOCOL},
    )
    response.raise_for_status()
    body = response.json()
    if "error" in body:
        raise RuntimeError(f"{name}: {body['error']}")
    result = body["result"]
    if result.get("isError"):
        raise RuntimeError(f"{name}: {result}")
    return result["content"][0]["text"]


async def new_session(http: httpx2.AsyncClient, url: str) -> str:
    response = await http.post(url, content=rpc(1, "initialize", {
        "protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "stale-probe", "version": "1"}}), headers=HEADERS)
    response.raise_for_status()
    sid = response.headers["mcp-session-id"]
    note = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode()
    r = await http.post(url, content=note, headers={**HEADERS, "mcp-session-id": sid, "mcp-protocol-version": PROTOCOL})
    assert r.status_code == 202, r.status_code
    return sid


async def client(index: int, a: str, b: str, pairs: int, warm: bool, out: dict) -> None:
    limits = httpx2.Limits(max_connections=2, max_keepalive_connections=2)
    async with httpx2.AsyncClient(timeout=30, limits=limits) as http:
        sid = await new_session(http, a)
        key = "k"
        prefix = f"{index}-{uuid.uuid4().hex[:6]}-"
        rid = 10
        # B caches the session first, so every write on A has an entry on B to invalidate.
        if warm:
            rid += 1
            await call(http, b, sid, rid, "state_get", {"key": key})
        previous = "null"
        for i in range(pairs):
            value = f"{prefix}{i}"
            expected = json.dumps(value)
            rid += 1
            t_set = time.time_ns()
            assert await call(http, a, sid, rid, "state_set", {"key": key, "value": value}) == "ok"
            t_ack = time.time_ns()
            out["set_ns"].append(t_ack - t_set)
            rid += 1
            t_get = time.time_ns()
            seen = await call(http, b, sid, rid, "state_get", {"key": key})
            t_got = time.time_ns()
            out["get_ns"].append(t_got - t_get)
            if seen != expected:
                kind = "previous" if seen == previous else "other"
                rereads = 0
                while seen != expected:
                    rereads += 1
                    rid += 1
                    seen = await call(http, b, sid, rid, "state_get", {"key": key})
                    if rereads > 100_000:
                        raise RuntimeError("B never saw the write")
                t_fresh = time.time_ns()
                out["stale"].append({
                    "client": index, "pair": i, "session": sid, "kind": kind, "value": value,
                    "set_sent": t_set, "set_ack": t_ack, "get_sent": t_get, "get_answered": t_got,
                    "fresh_at": t_fresh, "stale_for_ms": (t_fresh - t_ack) / 1e6, "rereads": rereads,
                })
            previous = expected


async def probe(a: str, b: str, pairs: int, clients: int, warm: bool) -> dict:
    out = {"set_ns": [], "get_ns": [], "stale": []}
    started = time.monotonic()
    per_client = pairs // clients
    await asyncio.gather(*(client(i, a, b, per_client, warm, out) for i in range(clients)))
    out["elapsed_s"] = time.monotonic() - started
    out["pairs"] = per_client * clients
    return out


def quantiles(values_ns: list[int]) -> str:
    if not values_ns:
        return "-"
    ms = sorted(v / 1e6 for v in values_ns)
    q = lambda p: ms[min(len(ms) - 1, int(p * len(ms)))]  # noqa: E731
    return f"p50 {q(0.5):.2f} p90 {q(0.9):.2f} p99 {q(0.99):.2f} max {ms[-1]:.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.environ.get("MCP_SERVER_BINARY", ".build/debug/mcp-session-server"))
    parser.add_argument("--postgres", default=os.environ.get("MCP_POSTGRES_URL", "postgres://mcp:mcp@127.0.0.1:54329/mcp_sessions"))
    parser.add_argument("--redis", help="a redis:// URL: both servers on this Redis (a fresh key prefix) instead of PostgreSQL")
    parser.add_argument("--a", help="instance A's URL (skip starting servers)")
    parser.add_argument("--b", help="instance B's URL")
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--no-warm", action="store_true", help="do not read on B before the first write")
    parser.add_argument("--server-arg", action="append", default=[], help="extra flag for both servers")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for both servers")
    parser.add_argument("--trace-dir", help="run the servers with MCP_TRACE=DIR/A.trace and DIR/B.trace (instrumented build)")
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--events", help="write the stale reads (JSON lines) here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    servers: list[Server] = []
    schema = None
    try:
        if args.a and args.b:
            a, b = args.a, args.b
        else:
            if args.redis:
                storage = f"{args.redis}{'&' if '?' in args.redis else '?'}prefix=stale_{uuid.uuid4().hex[:10]}"
            else:
                schema = f"stale_{uuid.uuid4().hex[:10]}"
                storage = f"{args.postgres}{'&' if '?' in args.postgres else '?'}schema={schema}"
            env = dict(os.environ, **dict(e.split("=", 1) for e in args.env))
            for name in "AB":
                server_env = dict(env)
                if args.trace_dir:
                    Path(args.trace_dir).mkdir(parents=True, exist_ok=True)
                    trace = Path(args.trace_dir) / f"{name}.trace"
                    trace.unlink(missing_ok=True)
                    server_env["MCP_TRACE"] = str(trace)
                servers.append(Server(args.binary, storage, args.server_arg, server_env, name))
            a, b = servers[0].url, servers[1].url
        out = asyncio.run(probe(a, b, args.pairs, args.clients, not args.no_warm))
    finally:
        for server in servers:
            server.stop()
        if servers and args.keep_logs:
            print("logs:", *(s.log.name for s in servers), file=sys.stderr)
        elif servers:
            for s in servers:
                os.unlink(s.log.name)
        if schema:
            subprocess.run(["psql", args.postgres, "-qc", f"SET client_min_messages = warning; DROP SCHEMA IF EXISTS {schema} CASCADE"],
                           capture_output=True, timeout=60)
    stale = out["stale"]
    durations = [s["stale_for_ms"] for s in stale]
    summary = {
        "pairs": out["pairs"], "clients": args.clients, "stale": len(stale),
        "stale_previous": sum(s["kind"] == "previous" for s in stale),
        "stale_for_ms": [round(min(durations), 2), round(statistics.median(durations), 2), round(max(durations), 2)] if durations else [],
        "elapsed_s": round(out["elapsed_s"], 1),
        "set": quantiles(out["set_ns"]), "get": quantiles(out["get_ns"]),
    }
    if args.events:
        with open(args.events, "w") as f:
            for s in stale:
                f.write(json.dumps(s) + "\n")
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{summary['stale']} stale of {summary['pairs']} pairs ({args.clients} clients, {summary['elapsed_s']} s); "
              f"stale for min/median/max {summary['stale_for_ms']} ms; set {summary['set']}; get {summary['get']}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())

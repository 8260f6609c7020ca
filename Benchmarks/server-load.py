"""Load benchmark of mcp-session-server: `tools/call state_get` over HTTP from a second process.

    python3 Benchmarks/server-load.py SERVER FLOOR POSTGRES_URL REDIS_URL [SECONDS]

In the same run it measures the floor (FLOOR, Hummingbird answering every POST with the same
bytes and nothing else) and the peer (the Python MCP SDK's own server, sessions in memory).
For each storage (memory, SQLite, PostgreSQL, Redis) with the front on and off, it starts the server
(release build) on loopback, opens one session per load connection, stores a value, and has
wrk (16 connections, 2 threads) call `state_get` as a real client does: POST with
`Accept: application/json, text/event-stream`, so each answer is an SSE stream (a priming event
and the response, both stored before they are sent). Prints one JSON line per configuration:
requests/s and the p99 latency, and fails if any request got a non-200 answer.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

CONNECTIONS = 16
THREADS = 2

LUA = r"""
-- Each thread cycles through the sessions given as the script's argument.
function init(args)
  sessions = {}
  for s in string.gmatch(args[1], "[^,]+") do table.insert(sessions, s) end
  position = 0
end
request = function()
  position = position % #sessions + 1
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream",
    ["MCP-Protocol-Version"] = "2025-11-25",
    ["Mcp-Session-Id"] = sessions[position],
  }, '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"state_get","arguments":{"key":"greeting"}}}')
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body: dict, session: str | None = None) -> tuple[dict | None, str | None]:
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-11-25"}
    if session:
        headers["Mcp-Session-Id"] = session
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
        sid = response.headers.get("Mcp-Session-Id")
    if not text.strip():
        return None, sid
    if text.lstrip().startswith("{"):
        return json.loads(text), sid
    messages = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:") and line[5:].strip()]
    return messages[-1], sid


def open_session(url: str) -> str:
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "load", "version": "1"}}}
    _, session = post(url, init)
    assert session
    post(url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session)
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "state_set", "arguments": {"key": "greeting", "value": {"hello": "world"}}}}
    answer, _ = post(url, call, session)
    assert answer["result"]["content"][0]["text"] == "ok", answer
    return session


def launch(command: list[str], port: int, workdir: str) -> subprocess.Popen:
    process = subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"{command[0]} did not start")
            time.sleep(0.05)


def load(url: str, sessions: list[str], seconds: int, workdir: str, label: str) -> dict:
    script = os.path.join(workdir, "state_get.lua")
    with open(script, "w") as f:
        f.write(LUA)
    run = subprocess.run(["wrk", "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", f"{seconds}s", "--latency",
                          "-s", script, url, "--", ",".join(sessions)], capture_output=True, text=True, check=True)
    out = run.stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"errors under load for {label}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
    return {"rps": rps, "p99_ms": float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]}


def measure(command: list[str], seconds: int, workdir: str, label: str, sessions: bool = True) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    process = launch([part.replace("{port}", str(port)) for part in command], port, workdir)
    try:
        ids = [open_session(url) for _ in range(CONNECTIONS)] if sessions else ["none"]
        return load(url, ids, seconds, workdir, label)
    finally:
        process.terminate()
        process.wait(20)


def record(name: str, figures: dict, **extra: object) -> None:
    print(json.dumps({"name": name, "value": round(figures["rps"]), "unit": "req/s", "p99_ms": figures["p99_ms"],
                      "connections": CONNECTIONS, **extra}), flush=True)


def main() -> None:
    binary, floor, postgres_url, redis_url = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    seconds = int(sys.argv[5]) if len(sys.argv) > 5 else 5
    with tempfile.TemporaryDirectory() as workdir:
        # The limit (HTTP alone) and the peer (the Python SDK's server, in memory) first.
        floor_figures = measure([floor, "{port}"], seconds, workdir, "HTTP floor", sessions=False)
        record("Server floor: Hummingbird fixed answer", floor_figures)
        peer = measure([sys.executable, os.path.join(os.path.dirname(__file__), "peer_python_server.py"), "{port}"],
                       seconds, workdir, "Python SDK")
        record("Server peer: Python mcp SDK in memory", peer)
        schema = f"load_{uuid.uuid4().hex[:8]}"
        storages = [
            ("memory", "memory:"),
            ("SQLite", f"sqlite:{workdir}/load.db"),
            ("PostgreSQL", f"{postgres_url}{'&' if '?' in postgres_url else '?'}schema={schema}"),
            ("Redis", f"{redis_url}{'&' if '?' in redis_url else '?'}prefix={schema}"),
        ]
        # The fronts over PostgreSQL and Redis run with their buses: read-your-writes confirms
        # each request's session version (one read); eventual trusts the bus. Both, to show the
        # check's cost.
        runs = [(label, storage, cache, None) for label, storage in storages for cache in ("lru", "none")]
        for label, storage in storages[2:]:
            runs.insert(runs.index((label, storage, "none", None)), (label, storage, "lru", "eventual"))
        for label, storage, cache, consistency in runs:
            flags = ["--consistency", consistency] if consistency else []
            figures = measure([binary, "--port", "{port}", "--storage", storage, "--cache", cache, *flags], seconds, workdir, label)
            name = f"Server state_get {label} front {'on' if cache == 'lru' else 'off'}" + (f" {consistency}" if consistency else "")
            record(name, figures, peer="Python mcp SDK in memory", peer_value=round(peer["rps"]),
                   ratio=round(figures["rps"] / peer["rps"], 2), floor_ratio=round(figures["rps"] / floor_figures["rps"], 2))


if __name__ == "__main__":
    main()

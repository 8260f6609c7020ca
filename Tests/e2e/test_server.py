"""End-to-end tests of `mcp-session-server` with a real MCP client: the Python `mcp` package.

Run by `scripts/test` (after `swift build`), or alone:

    MCP_SERVER_BINARY=.build/debug/mcp-session-server python3 -m unittest discover -s Tests/e2e -v

PostgreSQL tests use MCP_POSTGRES_URL (and MCP_POSTGRES_FAULTS_URL for the outage test) from
`scripts/services env`; without it they skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import atexit
import json
import os
import random
import re
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ClientMessageMetadata
from mcp_types import CallToolRequest, CallToolRequestParams, CallToolResult

ROOT = Path(__file__).resolve().parents[2]
BINARY = os.environ.get("MCP_SERVER_BINARY", str(ROOT / ".build/debug/mcp-session-server"))
POSTGRES_URL = os.environ.get("MCP_POSTGRES_URL")
POSTGRES_FAULTS_URL = os.environ.get("MCP_POSTGRES_FAULTS_URL")
IN_CI = os.environ.get("CI") == "true"


def require_postgres(url: str | None) -> str:
    if url:
        return url
    if IN_CI:
        raise AssertionError("MCP_POSTGRES_URL is not set under CI=true: run scripts/services start")
    raise unittest.SkipTest("PostgreSQL not configured: run `eval \"$(scripts/services env)\"`")


def fresh_schema(url: str) -> str:
    """The URL with a schema of its own, so runs do not see each other's sessions; the schema
    is dropped when the tests end."""
    schema = f"e2e_{uuid.uuid4().hex[:12]}"
    atexit.register(subprocess.run, ["psql", url, "-qc", f"SET client_min_messages = warning; DROP SCHEMA IF EXISTS {schema} CASCADE"],
                    capture_output=True, timeout=30)
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_run(count: int) -> int:
    """The first of `count` consecutive free loopback ports, below the ephemeral range, where
    the kernel does not hand them to outgoing connections meanwhile."""
    for base in random.sample(range(20000, 32000, count), 200):
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError(f"no {count} consecutive free ports")


class Server:
    """One `mcp-session-server` process on a free loopback port."""

    def __init__(self, *args: str, cwd: str | None = None):
        self.args = list(args)
        self.cwd = cwd
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="mcp-server-", suffix=".log", delete=False)

    def start(self) -> "Server":
        return self.start_with()

    def start_with(self, **popen: object) -> "Server":
        self.process = subprocess.Popen(
            [BINARY, "--port", str(self.port), *self.args], cwd=self.cwd, stdout=self.log, stderr=subprocess.STDOUT, **popen
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"server did not listen within 60 s:\n{self.output()}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def terminate(self) -> int:
        assert self.process
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(20)

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
        self.log.close()
        os.unlink(self.log.name)


class Connection:
    """A client session and what the server sent it besides responses."""

    def __init__(self) -> None:
        self.session_id: str | None = None
        self.logs: list[str] = []
        self.session: ClientSession | None = None

    async def on_log(self, params) -> None:  # noqa: ANN001 (the SDK's LoggingMessageNotificationParams)
        self.logs.append(params.data)


@asynccontextmanager
async def connect(url: str, session_id: str | None = None):
    """A real MCP client on `url`: a new session (initialize), or, given `session_id`, the
    existing one, as a client that lost its connection and comes back to any instance."""
    connection = Connection()
    headers = {}
    if session_id:
        headers = {"mcp-session-id": session_id, "mcp-protocol-version": "2025-11-25"}
        connection.session_id = session_id

    async def remember_session(response: httpx2.Response) -> None:
        if sid := response.headers.get("mcp-session-id"):
            connection.session_id = sid

    http = httpx2.AsyncClient(
        headers=headers, timeout=httpx2.Timeout(30, read=60), event_hooks={"response": [remember_session]}
    )
    async with http, streamable_http_client(url, http_client=http, terminate_on_close=False) as (read, write):
        async with ClientSession(read, write, logging_callback=connection.on_log) as session:
            connection.session = session
            if not session_id:
                await session.initialize()
            yield connection


def text(result: CallToolResult) -> str:
    assert not result.is_error, result
    return result.content[0].text


def ticker_request(count: int, interval_ms: int) -> CallToolRequest:
    return CallToolRequest(params=CallToolRequestParams(name="ticker", arguments={"count": count, "interval_ms": interval_ms}))


async def interrupted_ticker(url: str, count: int, after: int) -> tuple[str, str, list[str]]:
    """Starts a ticker, drops the connection after `after` ticks; returns the session id, the
    last event id seen, and the ticks received."""
    tokens: list[str] = []
    async with connect(url) as first:

        async def on_token(token: str) -> None:
            tokens.append(token)

        async with anyio.create_task_group() as group:

            async def call() -> None:
                await first.session.send_request(
                    ticker_request(count, 100), CallToolResult, metadata=ClientMessageMetadata(on_resumption_token_update=on_token)
                )

            group.start_soon(call)
            with anyio.fail_after(30):
                while len(first.logs) < after:
                    await anyio.sleep(0.01)
            group.cancel_scope.cancel()
        assert first.session_id and tokens
        # The client takes an event's id as its resumption token once the message is handed to
        # the session, which calls on_log in a task of its own: a cancel in between leaves the
        # token a tick ahead of the logs (or behind), and resuming from it would skip (or repeat)
        # that tick. So the ticks kept are those both logged and tokened, and the token is the
        # last of them: tokens[0] is the priming event's, tokens[i + 1] tick i's.
        kept = min(len(first.logs), len(tokens) - 1)
        return first.session_id, tokens[kept], list(first.logs[:kept])


async def resume_ticker(url: str, session_id: str, token: str, count: int) -> tuple[str, list[str]]:
    async with connect(url, session_id) as second:
        with anyio.fail_after(60):
            result = await second.session.send_request(
                ticker_request(count, 100), CallToolResult, metadata=ClientMessageMetadata(resumption_token=token)
            )
        return text(result), second.logs


def check_tools(test: unittest.TestCase, url: str) -> None:
    """Initialize, list the demo tools and call each: a missing key is `null`, a value comes back
    whole, a ticker sends its ticks as log messages, then `done`."""

    async def main() -> None:
        async with connect(url) as c:
            test.assertIsNotNone(c.session_id)
            tools = await c.session.list_tools()
            test.assertEqual([t.name for t in tools.tools], ["state_set", "state_get", "ticker"])
            test.assertEqual(text(await c.session.call_tool("state_get", {"key": "missing"})), "null")
            value = {"nested": [1, 2.5, "three", None, True], "quote": "it's \"x\""}
            test.assertEqual(text(await c.session.call_tool("state_set", {"key": "k", "value": value})), "ok")
            test.assertEqual(json.loads(text(await c.session.call_tool("state_get", {"key": "k"}))), value)
            test.assertEqual(text(await c.session.call_tool("ticker", {"count": 3, "interval_ms": 5})), "done")
            test.assertEqual(c.logs, ["tick 0", "tick 1", "tick 2"])

    anyio.run(main)


def check_ticker_resumes(test: unittest.TestCase, start_url: str, resume_url: str, count: int, after: int) -> None:
    """A ticker started on `start_url`, dropped after `after` ticks and resumed with its last
    event id on `resume_url`: every tick arrives exactly once, then `done`."""

    async def main() -> None:
        session_id, token, before = await interrupted_ticker(start_url, count=count, after=after)
        result, rest = await resume_ticker(resume_url, session_id, token, count=count)
        test.assertEqual((result, before + rest), ("done", [f"tick {i}" for i in range(count)]))

    anyio.run(main)


def raw_post(url: str, body: bytes | str, **headers: str) -> httpx2.Response:
    base = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    base.update({k.replace("_", "-"): v for k, v in headers.items()})
    return httpx2.post(url, content=body, headers=base, timeout=30)


INIT = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
    }
)


def tool_call(name: str, arguments: dict, id: int = 2) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": arguments}})


class SingleInstanceTests(unittest.TestCase):
    """One server on the embedded default, SQLite, in a scratch directory."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.directory = tempfile.TemporaryDirectory()
        cls.server = Server(cwd=cls.directory.name).start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.kill()
        cls.directory.cleanup()

    def test_default_storage_is_sqlite_in_the_working_directory(self) -> None:
        self.assertTrue((Path(self.directory.name) / "mcp_sessions.db").exists())

    def test_initialize_list_and_call_tools(self) -> None:
        check_tools(self, self.server.url)

    def test_state_is_per_session(self) -> None:
        async def main() -> None:
            async with connect(self.server.url) as a, connect(self.server.url) as b:
                await a.session.call_tool("state_set", {"key": "k", "value": "a"})
                self.assertEqual(text(await b.session.call_tool("state_get", {"key": "k"})), "null")

        anyio.run(main)

    def test_interrupted_ticker_resumes_with_every_tick_once(self) -> None:
        check_ticker_resumes(self, self.server.url, self.server.url, count=10, after=3)

    def test_unknown_and_deleted_sessions_get_404(self) -> None:
        missing = raw_post(self.server.url, tool_call("state_get", {"key": "k"}), mcp_session_id="no-such-session")
        self.assertEqual(missing.status_code, 404)
        created = raw_post(self.server.url, INIT, accept="application/json")
        self.assertEqual(created.status_code, 200)
        self.assertEqual(created.json()["result"]["protocolVersion"], "2025-11-25")
        sid = created.headers["mcp-session-id"]
        ok = raw_post(self.server.url, tool_call("state_get", {"key": "k"}), mcp_session_id=sid, accept="application/json")
        self.assertEqual(ok.json()["result"]["content"][0]["text"], "null")
        deleted = httpx2.delete(self.server.url, headers={"mcp-session-id": sid})
        self.assertEqual(deleted.status_code, 200)
        after = raw_post(self.server.url, tool_call("state_get", {"key": "k"}), mcp_session_id=sid)
        self.assertEqual(after.status_code, 404)
        self.assertEqual(httpx2.delete(self.server.url, headers={"mcp-session-id": sid}).status_code, 404)

    def test_bad_requests_get_clear_errors(self) -> None:
        sid = raw_post(self.server.url, INIT, accept="application/json").headers["mcp-session-id"]
        malformed = raw_post(self.server.url, '{"jsonrpc": "2.0", "id": 1,', mcp_session_id=sid)
        self.assertEqual((malformed.status_code, malformed.json()["error"]["code"]), (400, -32700))
        no_session = raw_post(self.server.url, tool_call("state_get", {"key": "k"}))
        self.assertEqual(no_session.status_code, 400)
        bad_version = raw_post(self.server.url, tool_call("state_get", {"key": "k"}), mcp_session_id=sid, mcp_protocol_version="1999-01-01")
        self.assertEqual(bad_version.status_code, 400)
        self.assertEqual(raw_post(self.server.url, INIT, content_type="text/plain").status_code, 415)
        self.assertEqual(raw_post(self.server.url, " " * (5 << 20), mcp_session_id=sid).status_code, 413)
        self.assertEqual(raw_post(self.server.url, INIT, origin="http://evil.example").status_code, 403)
        wrong_args = raw_post(self.server.url, tool_call("ticker", {"count": "many"}), mcp_session_id=sid, accept="application/json")
        self.assertEqual(wrong_args.json()["error"]["code"], -32602)
        # The server is still there.
        self.assertEqual(raw_post(self.server.url, INIT).status_code, 200)

    def test_last_event_id_from_another_session_replays_nothing(self) -> None:
        async def main() -> None:
            _, token, _ = await interrupted_ticker(self.server.url, count=4, after=1)
            async with connect(self.server.url) as other:
                response = httpx2.get(
                    self.server.url,
                    headers={"mcp-session-id": other.session_id, "last-event-id": token, "accept": "text/event-stream"},
                    timeout=10,
                )
                self.assertEqual(response.status_code, 400)
                self.assertIn("not sent in this session", response.json()["error"]["message"])

        anyio.run(main)


def open_fds(process: subprocess.Popen[bytes]) -> int:
    return len(os.listdir(f"/proc/{process.pid}/fd"))


def rss_mb(process: subprocess.Popen[bytes]) -> float:
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def initialize_with_id(request_id: object) -> bytes:
    return json.dumps(
        {"jsonrpc": "2.0", "id": request_id, "method": "initialize",
         "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}},
        ensure_ascii=False,
    ).encode()


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """Reads (and drops) what the server sends until it closes its side; False if it is still
    open after `timeout` seconds."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


class HostileInputTests(unittest.TestCase):
    """What a hostile or careless client sends: every answer is a clean one, and the server stays up."""

    def test_request_ids_never_kill_the_server_nor_leave_sessions_behind(self) -> None:
        with tempfile.TemporaryDirectory() as directory, Server("--storage", f"sqlite:{directory}/s.db") as server:
            answered = 0
            for request_id in ["x" * 254, "x" * 255, "x" * 100_000, "a\x7fb", "\x7f" * 40, "", "\x00", "\u2028\x85", 2**63 - 1, -(2**63)]:
                response = raw_post(server.url, initialize_with_id(request_id), accept="application/json")
                self.assertIsNone(server.process.poll(), f"the server died on id {request_id!r:.40}:\n{server.output()[-3000:]}")
                self.assertEqual(response.json()["id"], request_id)
                if response.status_code == 200:
                    answered += 1
                else:
                    self.assertEqual((response.status_code, response.json()["error"]["code"]), (400, -32600), response.text[:300])
            self.assertEqual(answered, 8)
            rows = subprocess.run(["sqlite3", f"{directory}/s.db", "SELECT count(*) FROM sessions"], capture_output=True, text=True, check=True)
            self.assertEqual(int(rows.stdout), answered, "a refused initialize left a session behind")

    def test_slow_headers_cannot_starve_the_server(self) -> None:
        """300 connections that trickle header lines and never finish them, under `ulimit -n 256`:
        the header deadline (10 s by default) closes them, and a new request is answered."""

        def low_fd_limit() -> None:
            import resource

            resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

        server = Server("--storage", "memory:")
        server.start_with(preexec_fn=low_fd_limit)
        self.addCleanup(server.__exit__)
        slow: list[socket.socket] = []
        for _ in range(300):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: x\r\n")
            slow.append(sock)
        self.addCleanup(lambda: [sock.close() for sock in slow])
        answer: list[object] = []

        def request() -> None:
            headers = {"content-type": "application/json", "accept": "application/json"}
            try:
                # It may wait in the listen backlog while earlier slow connections hold every slot.
                answer.append(httpx2.post(server.url, content=INIT, headers=headers, timeout=80).status_code)
            except Exception as error:  # noqa: BLE001 (the failure is what is checked)
                answer.append(error)

        import threading

        thread = threading.Thread(target=request)
        thread.start()
        deadline = time.monotonic() + 90
        while thread.is_alive() and time.monotonic() < deadline:
            for sock in slow:  # one more header line a second: the headers never end
                try:
                    sock.send(b"X-Slow: 1\r\n")
                except OSError:
                    pass
            time.sleep(1)
        thread.join()
        self.assertEqual(answer, [200], server.output()[-2000:])
        self.assertIsNone(server.process.poll())
        # Every slow connection is closed by the server, the last ones after their own deadline.
        self.assertTrue(all(closed_by_server(sock, 60) for sock in slow))

    def test_header_deadline_and_connection_cap_are_configurable_and_logged(self) -> None:
        with Server("--storage", "memory:", "--header-timeout", "1", "--max-connections", "4") as server:
            idle = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(12)]
            for sock in idle:
                sock.sendall(b"GET /mcp HTTP/1.1\r\n")
            # All of them are served in turn (4 at a time) and closed at their deadline.
            self.assertTrue(all(closed_by_server(sock, 60) for sock in idle))
            for sock in idle:
                sock.close()
            self.assertEqual(raw_post(server.url, INIT).status_code, 200)
            cap_lines = [line for line in server.output().splitlines() if "connection limit reached" in line]
            self.assertGreaterEqual(len(cap_lines), 1, server.output())
            self.assertLess(len(cap_lines), 4, "the cap is logged once in a while, not once per connection")
            self.assertIn("max-connections", cap_lines[0])
            metrics_url = server.url.rsplit("/mcp", 1)[0] + "/metrics"
            with urllib.request.urlopen(metrics_url, timeout=30) as answer:
                reached = re.search(r"^mcp_server_connection_limit_reached (\d+)", answer.read().decode(), re.MULTILINE)
            self.assertIsNotNone(reached, "the cap is counted in /metrics")
            self.assertGreaterEqual(int(reached.group(1)), 3, "12 connections through 4 slots fill them at least 3 times")

    def test_a_body_shorter_than_its_length_is_400_and_closes(self) -> None:
        with Server("--storage", "memory:") as server:
            baseline = open_fds(server.process)
            for _ in range(10):
                with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                    sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n" + b"{" * 50)
                    sock.shutdown(socket.SHUT_WR)
                    sock.settimeout(30)
                    head = sock.recv(65536)
                    self.assertTrue(head.startswith(b"HTTP/1.1 400"), head[:200])
                    self.assertIn(b"connection: close", head.lower())
                    self.assertTrue(closed_by_server(sock, 30))
            self.assertTrue(wait_until(lambda: open_fds(server.process) <= baseline, 30), (baseline, open_fds(server.process)))

    def test_a_refused_body_closes_its_connection_and_releases_its_fd(self) -> None:
        with Server("--storage", "memory:") as server:
            baseline = open_fds(server.process)
            held = []
            for declared in [True, False]:
                for _ in range(5):
                    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
                    held.append(sock)  # the client keeps its socket: the server must let go of its side
                    body = b" " * ((4 << 20) + 1)
                    length = b"Content-Length: %d\r\n" % len(body) if declared else b"Transfer-Encoding: chunked\r\n"
                    payload = body if declared else b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
                    sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + length + b"\r\n")
                    try:
                        sock.sendall(payload)
                    except OSError:
                        pass  # the server may stop reading once it refused
                    head = sock.recv(65536)
                    self.assertTrue(head.startswith(b"HTTP/1.1 413"), head[:200])
                    self.assertIn(b"connection: close", head.lower())
                    self.assertTrue(closed_by_server(sock, 30))
            self.assertTrue(wait_until(lambda: open_fds(server.process) <= baseline, 30), (baseline, open_fds(server.process)))
            for sock in held:
                sock.close()

    def test_state_value_at_the_limit_reads_back(self) -> None:
        with Server("--storage", "memory:") as server:
            sid = raw_post(server.url, INIT, accept="application/json").headers["mcp-session-id"]
            value = "x" * 1_048_558  # 1,048,560 bytes of JSON: the largest the default state limit takes
            stored = raw_post(server.url, tool_call("state_set", {"key": "k", "value": value}), mcp_session_id=sid, accept="application/json")
            self.assertEqual(stored.json()["result"]["content"][0]["text"], "ok", stored.text[:300])
            read = raw_post(server.url, tool_call("state_get", {"key": "k"}, id=3), mcp_session_id=sid, accept="application/json")
            self.assertIn("result", read.json(), read.text[:300])
            self.assertEqual(json.loads(read.json()["result"]["content"][0]["text"]), value)

    def test_large_bodies_are_released(self) -> None:
        """100 POSTs of 4 MiB (refused and accepted ones, several at once): the memory they took
        is given back; RSS before and after is printed."""
        with Server("--storage", "memory:") as server:
            sid = raw_post(server.url, INIT, accept="application/json").headers["mcp-session-id"]
            size = 4 << 20
            head = tool_call("state_set", {"key": "k", "value": "VALUE"}).encode().split(b'"VALUE"')
            bodies = [
                b'{"jsonrpc":"2.0","id":2,"method":"ping","params":[' + b",".join([b"1"] * ((size - 100) // 2)) + b"]}",  # many small values
                head[0] + b'"' + b"x" * (size - 200) + b'"' + head[1],  # one large string
                b" " * (size + 1),  # too large
            ]
            raw_post(server.url, bodies[0], mcp_session_id=sid)  # warm up: the first large request's arenas
            time.sleep(1)
            before = rss_mb(server.process)
            import concurrent.futures

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                codes = list(pool.map(lambda n: raw_post(server.url, bodies[n % 3], mcp_session_id=sid).status_code, range(100)))
            self.assertEqual(sorted(set(codes)), [200, 413])
            wait_until(lambda: rss_mb(server.process) < before + 16, 10)
            after = rss_mb(server.process)
            print(f"\nRSS before {before:.0f} MB, after 100 POSTs of 4 MiB {after:.0f} MB", flush=True)
            self.assertLess(after - before, 16, f"RSS grew from {before:.0f} MB to {after:.0f} MB")


class RestartTests(unittest.TestCase):
    def test_sigkill_and_restart_on_sqlite_keeps_session_and_state(self) -> None:
        with tempfile.TemporaryDirectory() as directory:
            storage = f"sqlite:{directory}/sessions.db"

            async def write(url: str) -> str:
                async with connect(url) as c:
                    await c.session.call_tool("state_set", {"key": "survivor", "value": {"n": 42}})
                    return c.session_id

            async def read(url: str, sid: str) -> str:
                async with connect(url, sid) as c:
                    return text(await c.session.call_tool("state_get", {"key": "survivor"}))

            with Server("--storage", storage) as first:
                sid = anyio.run(write, first.url)
                first.kill()
            with Server("--storage", storage) as second:
                self.assertEqual(json.loads(anyio.run(read, second.url, sid)), {"n": 42})

    def test_sigterm_shuts_down_gracefully_with_an_open_stream(self) -> None:
        with Server("--storage", "memory:") as server:
            sid = raw_post(server.url, INIT, accept="application/json").headers["mcp-session-id"]
            with httpx2.stream("GET", server.url, headers={"mcp-session-id": sid, "accept": "text/event-stream"}, timeout=30) as stream:
                self.assertEqual(stream.status_code, 200)
                started = time.monotonic()
                self.assertEqual(server.terminate(), 0, server.output())
                self.assertLess(time.monotonic() - started, 15)

    def test_idle_sessions_expire(self) -> None:
        with Server("--storage", "memory:", "--session-ttl", "1") as server:
            sid = raw_post(server.url, INIT, accept="application/json").headers["mcp-session-id"]
            time.sleep(2.2)
            self.assertEqual(raw_post(server.url, tool_call("state_get", {"key": "k"}), mcp_session_id=sid).status_code, 404)


class TwoInstanceTests(unittest.TestCase):
    """Two servers over one PostgreSQL database, each with its front and the NOTIFY bus."""

    def arguments(self) -> list[str]:
        return ["--storage", fresh_schema(require_postgres(POSTGRES_URL))]

    def setUp(self) -> None:
        arguments = self.arguments()
        self.a = Server(*arguments).start()
        self.b = Server(*arguments).start()

    def tearDown(self) -> None:
        self.a.kill()
        self.b.kill()

    # How long the other instance may still serve what a write replaced: 0 means its very next
    # request sees the write (the NOTIFY is sent inside the write, so it is on its way before
    # the write is acknowledged).
    staleness_bound = 0.0

    async def eventually(self, read, expected):  # noqa: ANN001, ANN201
        seen, deadline = await read(), time.monotonic() + self.staleness_bound
        while seen != expected and time.monotonic() < deadline:
            seen = await read()
        return seen

    def test_state_written_on_one_is_read_on_the_other_at_once(self) -> None:
        async def main() -> None:
            async with connect(self.a.url) as on_a:
                async with connect(self.b.url, on_a.session_id) as on_b:
                    # B caches the session first, so A's write must invalidate it.
                    self.assertEqual(text(await on_b.session.call_tool("state_get", {"key": "k"})), "null")
                    for i in range(5):
                        await on_a.session.call_tool("state_set", {"key": "k", "value": i})

                        async def read() -> str:
                            return text(await on_b.session.call_tool("state_get", {"key": "k"}))

                        self.assertEqual(await self.eventually(read, str(i)), str(i))

        anyio.run(main)

    def test_ticker_started_on_one_resumes_on_the_other(self) -> None:
        check_ticker_resumes(self, self.a.url, self.b.url, count=12, after=3)

    def test_delete_on_one_ends_the_session_on_both(self) -> None:
        sid = raw_post(self.a.url, INIT, accept="application/json").headers["mcp-session-id"]
        self.assertEqual(raw_post(self.b.url, tool_call("state_get", {"key": "k"}), mcp_session_id=sid).status_code, 200)
        self.assertEqual(httpx2.delete(self.b.url, headers={"mcp-session-id": sid}).status_code, 200)

        async def read() -> int:
            return raw_post(self.a.url, tool_call("state_get", {"key": "k"}), mcp_session_id=sid).status_code

        self.assertEqual(anyio.run(self.eventually, read, 404), 404)


async def alternate_set_and_get(a_url: str, b_url: str, pairs: int, stale: list[tuple[int, str, str]]) -> None:
    """A client of its own session: `state_set` a fresh value on A, wait for `ok`, then `state_get`
    on B (same `Mcp-Session-Id`), `pairs` times. Reads on B that did not return the value just
    acknowledged go to `stale`. Raw HTTP with JSON answers: the client costs little next to the servers."""
    json_headers = {"content-type": "application/json", "accept": "application/json"}
    async with httpx2.AsyncClient(timeout=30) as http:
        created = await http.post(a_url, content=INIT, headers=json_headers)
        sid = created.headers["mcp-session-id"]
        headers = {**json_headers, "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"}
        initialized = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert (await http.post(a_url, content=initialized, headers=headers)).status_code == 202

        async def call(url: str, name: str, arguments: dict, id: int) -> str:
            response = await http.post(url, content=tool_call(name, arguments, id), headers=headers)
            response.raise_for_status()
            return response.json()["result"]["content"][0]["text"]

        # B caches the session first, so every write on A has an entry on B to invalidate.
        await call(b_url, "state_get", {"key": "k"}, 2)
        prefix = uuid.uuid4().hex[:8]
        for i in range(pairs):
            value = f"{prefix}-{i}"
            assert await call(a_url, "state_set", {"key": "k", "value": value}, 3 + 2 * i) == "ok"
            seen = await call(b_url, "state_get", {"key": "k"}, 4 + 2 * i)
            if seen != json.dumps(value):
                stale.append((i, value, seen))


class ReadYourWritesAcrossInstancesTests(unittest.TestCase):
    """Issue 14, point 2: two instances over one PostgreSQL with the default flags (`--cache lru
    --bus auto`). A read that starts after a write was acknowledged on either instance returns
    that write or a newer one, as for a client behind a round-robin balancer."""

    def setUp(self) -> None:
        arguments = ["--storage", fresh_schema(require_postgres(POSTGRES_URL))]
        self.a = Server(*arguments).start()
        self.b = Server(*arguments).start()

    def tearDown(self) -> None:
        self.a.kill()
        self.b.kill()

    def check(self, clients: int, pairs: int) -> None:
        stale: list[tuple[int, str, str]] = []

        async def main() -> None:
            with anyio.fail_after(120):
                async with anyio.create_task_group() as group:
                    for _ in range(clients):
                        group.start_soon(alternate_set_and_get, self.a.url, self.b.url, pairs, stale)

        anyio.run(main)
        self.assertEqual(len(stale), 0, f"{len(stale)} of {clients * pairs} reads on B returned an older value "
                                         f"than the write just acknowledged on A, e.g. {stale[:3]}")

    def test_sequential_client_reads_its_writes_on_the_other_instance(self) -> None:
        self.check(clients=1, pairs=1000)

    def test_16_concurrent_clients_read_their_writes_on_the_other_instance(self) -> None:
        self.check(clients=16, pairs=80)


class SharedSQLiteWithPostgresBusTests(TwoInstanceTests):
    """The same, over one SQLite file, with `--bus postgres://…`: the batched, numbered bus.
    It sends after the commit, batched up to 2 ms apart, so the other instance sees a write once
    the message arrives (milliseconds), not necessarily on its very next request."""

    staleness_bound = 2.0

    def arguments(self) -> list[str]:
        self.directory = tempfile.TemporaryDirectory()
        self.addCleanup(self.directory.cleanup)
        return ["--storage", f"sqlite:{self.directory.name}/shared.db", "--bus", require_postgres(POSTGRES_URL)]


class HealthTests(unittest.TestCase):
    """`GET /health` (the process serves HTTP) and `GET /ready` (storage answers, the bus is
    connected), for balancers and container health checks."""

    @staticmethod
    def get(url: str) -> tuple[int, dict, dict]:
        try:
            with urllib.request.urlopen(url, timeout=30) as answer:
                return answer.status, dict(answer.headers), json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), json.loads(error.read())

    def test_health_and_ready_on_sqlite(self) -> None:
        with tempfile.TemporaryDirectory() as directory, Server("--storage", f"sqlite:{directory}/s.db") as server:
            base = server.url.rsplit("/mcp", 1)[0]
            self.assertEqual(self.get(base + "/health")[::2], (200, {"status": "ok"}))
            self.assertEqual(self.get(base + "/ready")[::2], (200, {"status": "ready"}))

    def test_metrics_in_prometheus_text_format(self) -> None:
        with Server("--storage", "memory:") as server:
            base = server.url.rsplit("/mcp", 1)[0]
            body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            request = urllib.request.Request(server.url, data=json.dumps(body).encode(), method="POST",
                                             headers={"content-type": "application/json", "accept": "application/json"})
            with self.assertRaises(urllib.error.HTTPError):  # no session: 400 or 404, counted all the same
                urllib.request.urlopen(request, timeout=30)
            with urllib.request.urlopen(base + "/metrics", timeout=30) as answer:
                self.assertTrue(answer.headers["Content-Type"].startswith("text/plain; version=0.0.4"))
                text = answer.read().decode()
            self.assertRegex(text, r'mcp_server_requests\{method="POST",status="4\d\d"\} 1')
            self.assertIn("mcp_server_open_streams", text)
            self.assertIn("mcp_session_front_misses", text)

    def test_ready_is_503_while_storage_is_unreachable(self) -> None:
        with Server("--storage", "postgres://mcp:mcp@127.0.0.1:1/none", "--bus", "none") as server:
            base = server.url.rsplit("/mcp", 1)[0]
            self.assertEqual(self.get(base + "/health")[0], 200)
            status, headers, body = self.get(base + "/ready")
            self.assertEqual(status, 503)
            self.assertEqual(body["status"], "not ready")
            self.assertIn("storage", body)
            self.assertEqual(headers.get("Retry-After"), "1")


class CommandLineTests(unittest.TestCase):
    def test_flags_come_from_the_environment_and_the_command_line_wins(self) -> None:
        environment = dict(os.environ, MCP_STORAGE="memory:")
        with tempfile.TemporaryDirectory() as directory:
            for arguments, expected in [([], "storage=memory"), (["--storage", f"sqlite:{directory}/s.db"], "storage=sqlite")]:
                server = Server(*arguments).start_with(env=environment)
                try:
                    deadline = time.monotonic() + 10
                    while "storage=" not in server.output() and time.monotonic() < deadline:
                        time.sleep(0.05)
                    self.assertIn(expected, server.output())
                finally:
                    server.__exit__(None, None, None)
        run = subprocess.run([BINARY], env=dict(os.environ, MCP_PORT="abc"), capture_output=True, text=True, timeout=30)
        self.assertNotEqual(run.returncode, 0)
        self.assertIn("'abc' is invalid for '--port", run.stderr)

    def test_bad_flags_fail_with_a_clear_message(self) -> None:
        for arguments, message in [
            (["--storage", "redis://127.0.0.1:abc"], "expected HOST[:PORT]"),
            (["--storage", "rediss://127.0.0.1:6379"], "no rediss backend"),
            (["--storage", "dynamodb://x?region=eu-west-1"], "a DynamoDB table name is 3–255"),
            (["--storage", "dynamodb://sessions?regio=eu-west-1"], "unknown DynamoDB URL parameter"),
            (["--storage", "mysql://x"], "expected memory:, sqlite:PATH, postgres://"),
            (["--bus", "kafka://x"], "expected auto, none, postgres://"),
            (["--cache", "arc"], "--cache"),
            (["--session-ttl", "0"], "--session-ttl must be positive"),
            (["--bus-gap=-1"], "--bus-gap must not be negative"),
            (["--header-timeout", "0"], "--header-timeout must be positive"),
            (["--max-connections", "0"], "--max-connections must be at least 1"),
        ]:
            run = subprocess.run([BINARY, *arguments], capture_output=True, text=True, timeout=30)
            self.assertNotEqual(run.returncode, 0, arguments)
            self.assertIn(message, run.stderr, arguments)


class ClusterScriptTests(unittest.TestCase):
    """`scripts/cluster`: three instances behind nginx, round-robin, over one PostgreSQL."""

    def setUp(self) -> None:
        # nginx on the first port, the three instances on the next ones.
        self.port = free_port_run(4)
        self.env = dict(os.environ, MCP_SERVER_BINARY=BINARY, CLUSTER_PORT=str(self.port),
                        CLUSTER_STORAGE=fresh_schema(require_postgres(POSTGRES_URL)))
        self.script = str(ROOT / "scripts/cluster")
        started = subprocess.run([self.script, "start", "3"], env=self.env, capture_output=True, text=True, timeout=600)
        if started.returncode != 0:
            logs = "".join(f"\n--- {log.name}\n" + log.read_text()[-2000:] for log in sorted((ROOT / ".cluster").glob("*.log")))
            self.fail(f"scripts/cluster start failed:\n{started.stderr}{logs}")
        self.url = f"http://127.0.0.1:{self.port}/mcp"

    def tearDown(self) -> None:
        subprocess.run([self.script, "stop"], env=self.env, check=True, capture_output=True, timeout=120)

    def test_a_session_works_whichever_instance_answers(self) -> None:
        async def main() -> None:
            async with connect(self.url) as c:
                for i in range(9):  # three rounds over the three instances
                    await c.session.call_tool("state_set", {"key": "n", "value": i})
                    self.assertEqual(text(await c.session.call_tool("state_get", {"key": "n"})), str(i))

        anyio.run(main)
        check_ticker_resumes(self, self.url, self.url, count=8, after=2)


class OutageTests(unittest.TestCase):
    def test_an_outage_during_a_call_ends_its_stream_with_a_json_rpc_error(self) -> None:
        url = fresh_schema(require_postgres(POSTGRES_FAULTS_URL))
        services = str(ROOT / "scripts/services")
        with Server("--storage", url) as server:

            async def main() -> None:
                async with connect(server.url) as c:
                    async with anyio.create_task_group() as group:
                        outcome: list[BaseException | str] = []

                        async def call() -> None:
                            try:
                                outcome.append(text(await c.session.call_tool("ticker", {"count": 100, "interval_ms": 100})))
                            except Exception as error:  # noqa: BLE001 (the error is what is checked)
                                outcome.append(error)

                        group.start_soon(call)
                        with anyio.fail_after(30):
                            while len(c.logs) < 2:
                                await anyio.sleep(0.01)
                        await anyio.to_thread.run_sync(
                            lambda: subprocess.run([services, "stop", "postgres-faults"], check=True, capture_output=True)
                        )
                        with anyio.fail_after(60):
                            while not outcome:
                                await anyio.sleep(0.05)
                    self.assertIsInstance(outcome[0], MCPError, outcome)
                    self.assertIn("unavailable", str(outcome[0]))
                    self.assertLess(len(c.logs), 100)

            try:
                anyio.run(main)
            finally:
                subprocess.run([services, "start", "postgres-faults"], check=True, capture_output=True)
            self.assertIsNone(server.process.poll(), "the server kept running")

    def test_storage_outage_gives_503_then_heals(self) -> None:
        url = fresh_schema(require_postgres(POSTGRES_FAULTS_URL))
        services = str(ROOT / "scripts/services")
        with Server("--storage", url) as server:
            sid = raw_post(server.url, INIT, accept="application/json").headers["mcp-session-id"]
            subprocess.run([services, "stop", "postgres-faults"], check=True, capture_output=True)
            try:
                # A fresh session needs the database: the front cannot answer for it.
                down = raw_post(server.url, INIT)
                self.assertEqual(down.status_code, 503, down.text)
                self.assertIn("retry-after", down.headers)
            finally:
                subprocess.run([services, "start", "postgres-faults"], check=True, capture_output=True)
            deadline = time.monotonic() + 30
            while True:
                healed = raw_post(server.url, tool_call("state_set", {"key": "k", "value": 1}), mcp_session_id=sid, accept="application/json")
                if healed.status_code == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            self.assertEqual(healed.status_code, 200, healed.text)
            self.assertEqual(healed.json()["result"]["content"][0]["text"], "ok")


if __name__ == "__main__":
    unittest.main()

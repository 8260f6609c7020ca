"""End-to-end tests of how calls and sessions live and end: a call whose instance stops is
answered with an error any instance can replay, and a session in use never expires.

Run by `scripts/test`, or alone (see test_server.py for the environment):

    MCP_SERVER_BINARY=.build/debug/mcp-session-server python3 -m unittest discover -s Tests/e2e -p 'test_lifecycle.py' -v
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import unittest
from collections.abc import Iterator

import anyio
import httpx2

from test_server import INIT, POSTGRES_URL, Server, connect, fresh_schema, raw_post, require_postgres, text, tool_call

STOPPED = -32001  # RPCError.instanceStopped
LEASE_TIMEOUT = 5.0  # MCPServer.Configuration.callLeaseTimeout's default


def sse(response: httpx2.Response, deadline: float | None = None) -> Iterator[tuple[str | None, dict | None]]:
    """The (id, JSON message) of each SSE event; priming events have no message. Stops at the
    `deadline` (time.monotonic()), checked at each line, keep-alive comments included."""
    event_id, data = None, None
    for line in response.iter_lines():
        if deadline is not None and time.monotonic() > deadline:
            raise AssertionError("the stream did not end in time")
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            data = json.loads(line[6:]) if line[6:].strip() else None
        elif line == "":
            if event_id is not None or data is not None:
                yield event_id, data
            event_id, data = None, None


def is_answer(message: dict | None) -> bool:
    return message is not None and "method" not in message and ("result" in message or "error" in message)


def start_ticker(
    url: str, session: str, count: int, interval_ms: int, ticks: int
) -> tuple[httpx2.Client, Iterator[tuple[str | None, dict | None]], str, list[dict]]:
    """POSTs a ticker call answered as SSE and reads until `ticks` ticks arrived; returns the
    client, the rest of the stream's events, the last event id read and the messages read."""
    client = httpx2.Client(timeout=httpx2.Timeout(60))
    request = client.build_request(
        "POST", url, content=tool_call("ticker", {"count": count, "interval_ms": interval_ms}),
        headers={"content-type": "application/json", "accept": "application/json, text/event-stream", "mcp-session-id": session})
    response = client.send(request, stream=True)
    seen: list[dict] = []
    last = None
    events = sse(response, deadline=time.monotonic() + 60)
    for event_id, message in events:
        last = event_id or last
        if message:
            seen.append(message)
        if len(seen) >= ticks:
            break
    assert last, "no event id"
    return client, events, last, seen


def resume(url: str, session: str, last_event_id: str, within: float) -> tuple[list[dict], float]:
    """Resumes a stream with Last-Event-ID and reads it to its answer; returns the messages and
    how long that took."""
    started = time.monotonic()
    with httpx2.stream("GET", url, timeout=httpx2.Timeout(20), headers={
            "accept": "text/event-stream", "mcp-session-id": session, "last-event-id": last_event_id}) as response:
        assert response.status_code == 200, response.read()
        messages = [message for _, message in sse(response, deadline=started + within) if message]
    return messages, time.monotonic() - started


class CallLeaseTests(unittest.TestCase):
    """Two instances over one PostgreSQL schema; a ticker started on A, resumed on B."""

    def setUp(self) -> None:
        self.url = fresh_schema(require_postgres(POSTGRES_URL))
        self.a = Server("--storage", self.url).start()
        self.b = Server("--storage", self.url).start()
        self.session = raw_post(self.a.url, INIT, accept="application/json").headers["mcp-session-id"]

    def tearDown(self) -> None:
        if self.a.process and self.a.process.poll() is None:
            self.a.process.send_signal(signal.SIGCONT)
        self.a.kill()
        self.b.kill()

    def stored_answers(self, stream: str) -> int:
        """How many answers the stream holds in storage."""
        schema = self.url.split("schema=")[1]
        query = (f"SELECT count(*) FROM {schema}.mcp_session_events WHERE session_id = '{self.session}' AND stream = '{stream}' "
                 "AND data::jsonb ? 'id' AND NOT data::jsonb ? 'method'")
        out = subprocess.run(["psql", POSTGRES_URL, "-tAc", query], capture_output=True, text=True, check=True)
        return int(out.stdout.strip())

    def test_a_call_whose_instance_was_killed_ends_with_an_error_every_resume_sees(self) -> None:
        client, _, last, _ = start_ticker(self.a.url, self.session, count=200, interval_ms=200, ticks=3)
        self.a.kill()
        client.close()
        messages, took = resume(self.b.url, self.session, last, within=30)
        self.assertTrue(is_answer(messages[-1]), messages[-1:])
        self.assertEqual(messages[-1]["error"]["code"], STOPPED, messages[-1])
        self.assertLess(took, LEASE_TIMEOUT + 5, "the orphaned call was ended within the lease timeout")
        # Stored: a second resume, from the same place, gets the same answer at once.
        again, took = resume(self.b.url, self.session, last, within=30)
        self.assertEqual(again, messages)
        self.assertLess(took, 2)
        self.assertEqual(self.stored_answers("2"), 1)

    def test_graceful_shutdown_answers_running_calls_before_exit(self) -> None:
        client, events, last, _ = start_ticker(self.a.url, self.session, count=200, interval_ms=100, ticks=2)
        try:
            self.a.process.send_signal(signal.SIGTERM)
            rest = [message for _, message in events if message]
            self.assertTrue(rest and is_answer(rest[-1]), rest[-1:])
            self.assertEqual(rest[-1]["error"]["code"], STOPPED)
        finally:
            client.close()
        self.assertEqual(self.a.process.wait(20), 0)
        self.assertIn("shutting down", self.a.output())
        messages, took = resume(self.b.url, self.session, last, within=30)
        self.assertEqual(messages[-1]["error"]["code"], STOPPED)
        self.assertLess(took, 2, "the answer was stored before A exited")

    def test_a_paused_instance_is_ended_once_and_stops_its_call_when_it_wakes(self) -> None:
        client, _, last, _ = start_ticker(self.a.url, self.session, count=200, interval_ms=100, ticks=15)
        try:
            self.a.process.send_signal(signal.SIGSTOP)
            messages, _ = resume(self.b.url, self.session, last, within=30)
            self.assertEqual(messages[-1]["error"]["code"], STOPPED)
            self.a.process.send_signal(signal.SIGCONT)
            # A finds its lease taken at its next renewal, and stops the call without answering.
            deadline = time.monotonic() + 10
            while "another instance ended this call" not in self.a.output() and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertIn("another instance ended this call", self.a.output())
            time.sleep(1)
            self.assertEqual(self.stored_answers("2"), 1, "exactly one answer is stored")
        finally:
            client.close()


class ActivityTests(unittest.TestCase):
    """A session used more often than its TTL, or with a call running, never expires."""

    def test_a_session_used_every_second_outlives_a_three_second_ttl(self) -> None:
        with Server("--storage", "memory:", "--session-ttl", "3") as server:
            session = raw_post(server.url, INIT, accept="application/json").headers["mcp-session-id"]
            for _ in range(8):
                time.sleep(1)
                response = raw_post(server.url, tool_call("state_get", {"key": "k"}), mcp_session_id=session, accept="application/json")
                self.assertEqual(response.status_code, 200, response.text)

    def test_a_running_call_keeps_its_session_alive(self) -> None:
        with Server("--storage", "memory:", "--session-ttl", "2") as server:

            async def main() -> None:
                async with connect(server.url) as c:
                    result = await c.session.call_tool("ticker", {"count": 12, "interval_ms": 500})
                    self.assertEqual(text(result), "done")
                    self.assertEqual(c.logs, [f"tick {i}" for i in range(12)])

            anyio.run(main)

    def test_two_instances_used_in_turn_keep_the_session_alive(self) -> None:
        url = fresh_schema(require_postgres(POSTGRES_URL))
        with Server("--storage", url, "--session-ttl", "3") as a, Server("--storage", url, "--session-ttl", "3") as b:
            session = raw_post(a.url, INIT, accept="application/json").headers["mcp-session-id"]
            for round in range(8):
                time.sleep(1)
                server = (a, b)[round % 2]
                response = raw_post(server.url, tool_call("state_get", {"key": "k"}), mcp_session_id=session, accept="application/json")
                self.assertEqual(response.status_code, 200, f"round {round} on {'ab'[round % 2]}: {response.text}")


if __name__ == "__main__":
    unittest.main()

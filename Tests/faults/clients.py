"""The fault run's clients: raw JSON-RPC over HTTP (httpx2), every operation recorded.

- State clients come in pairs that share one MCP session (any request that carries the
  `Mcp-Session-Id` is served, on any instance). Each writes 1, 2, 3, ... to its own key with
  `state_set`, reads it back with `state_get`, and reads its partner's key. After a write
  whose outcome is unknown (an error, a timeout) it moves to a new key: that write may still
  commit later, and must not be able to overwrite a later acknowledged one.
- Ticker clients start a `ticker` call, drop its stream after a few ticks, and resume it with
  `Last-Event-ID` through nginx, on whatever instance it picks, until the call ends.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import httpx2

from history import Op, Recorder, TickerCall

PROTOCOL = "2025-11-25"
JSON_HEADERS = {"content-type": "application/json", "accept": "application/json"}
SSE_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
TIMEOUT = httpx2.Timeout(5.0)


class CallFailed(Exception):
    def __init__(self, message: str, instance: str | None = None) -> None:
        super().__init__(message)
        self.instance = instance


def upstream(response: httpx2.Response, default: str | None = None) -> str | None:
    """The instance that answered: nginx's `X-Upstream` (the local run) or `X-MCP-Upstream` (the
    containers), the last address of the list when nginx tried more than one."""
    header = response.headers.get("x-upstream") or response.headers.get("x-mcp-upstream")
    return header.split(",")[-1].strip() if header else default


def rpc(id_: int, method: str, params: dict[str, Any] | None = None) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        message["params"] = params
    return json.dumps(message).encode()


def session_headers(session: str) -> dict[str, str]:
    return {"mcp-session-id": session, "mcp-protocol-version": PROTOCOL}


async def new_session(http: httpx2.AsyncClient, url: str, name: str) -> str:
    response = await http.post(url, content=rpc(1, "initialize", {
        "protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": name, "version": "1"}}), headers=JSON_HEADERS)
    if response.status_code != 200:
        raise CallFailed(f"initialize: HTTP {response.status_code}")
    session = response.headers["mcp-session-id"]
    note = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode()
    response = await http.post(url, content=note, headers={**JSON_HEADERS, **session_headers(session)})
    if response.status_code != 202:
        raise CallFailed(f"notifications/initialized: HTTP {response.status_code}")
    return session


async def session_with_retries(http: httpx2.AsyncClient, url: str, name: str, attempts: int = 60) -> str:
    for attempt in range(attempts):
        try:
            return await new_session(http, url, name)
        except (httpx2.HTTPError, CallFailed, KeyError):
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5)
    raise AssertionError("unreachable")


async def call_tool(http: httpx2.AsyncClient, url: str, session: str, id_: int, name: str, arguments: dict[str, Any]) -> tuple[str, str | None]:
    """The tool's text answer and the instance that gave it; CallFailed otherwise."""
    try:
        response = await http.post(url, content=rpc(id_, "tools/call", {"name": name, "arguments": arguments}),
                                   headers={**JSON_HEADERS, **session_headers(session)}, timeout=TIMEOUT)
    except httpx2.HTTPError as error:
        raise CallFailed(f"{type(error).__name__}: {error}") from error
    instance = upstream(response)
    if response.status_code != 200:
        raise CallFailed(f"HTTP {response.status_code}: {response.text[:120]}", instance)
    body = response.json()
    if "error" in body:
        raise CallFailed(f"JSON-RPC error {body['error'].get('code')}: {body['error'].get('message', '')[:120]}", instance)
    result = body["result"]
    if result.get("isError"):
        raise CallFailed(f"tool error: {result['content'][0]['text'][:120]}", instance)
    return result["content"][0]["text"], instance


def parse_value(text: str) -> int | None:
    value = json.loads(text)
    if value is not None and not isinstance(value, int):
        raise CallFailed(f"state_get returned {text!r}, not an integer")
    return value


@dataclass
class Workload:
    """What the clients share: where to send requests, the recorder, and when to stop."""

    url: str
    recorder: Recorder
    stop: asyncio.Event
    current_keys: dict[str, tuple[str, str]] = field(default_factory=dict)  # client -> (session, key)
    keys: dict[str, str] = field(default_factory=dict)  # every key written -> its session
    request_ids: int = 100

    def next_id(self) -> int:
        self.request_ids += 1
        return self.request_ids


async def timed_call(workload: Workload, http: httpx2.AsyncClient, url: str, op: str, client: str, session: str,
                     key: str, value: int | None) -> Op:
    """One state_set (value given) or state_get (value None), recorded."""
    start = workload.recorder.now()
    try:
        if op == "write":
            text, instance = await call_tool(http, url, session, workload.next_id(), "state_set", {"key": key, "value": value})
            if text != "ok":
                raise CallFailed(f"state_set answered {text!r}", instance)
            result = Op(op, client, session, key, value, start, workload.recorder.now(), "ok", instance)
        else:
            text, instance = await call_tool(http, url, session, workload.next_id(), "state_get", {"key": key})
            result = Op(op, client, session, key, parse_value(text), start, workload.recorder.now(), "ok", instance)
    except (CallFailed, ValueError) as error:
        result = Op(op, client, session, key, value, start, workload.recorder.now(), "error",
                    getattr(error, "instance", None), str(error)[:200])
    workload.recorder.add(result)
    return result


async def state_client(workload: Workload, name: str, partner: str, session: str) -> None:
    async with httpx2.AsyncClient(timeout=TIMEOUT, limits=httpx2.Limits(max_connections=2)) as http:
        generation, value = 0, 0
        key = f"{name}/{generation}"
        while not workload.stop.is_set():
            workload.current_keys[name] = (session, key)
            workload.keys[key] = session
            value += 1
            write = await timed_call(workload, http, workload.url, "write", name, session, key, value)
            if write.outcome != "ok":
                generation, value = generation + 1, 0
                key = f"{name}/{generation}"
                await asyncio.sleep(0.2)
                continue
            await timed_call(workload, http, workload.url, "read", name, session, key, None)
            if partner in workload.current_keys:
                await timed_call(workload, http, workload.url, "read", name, session, workload.current_keys[partner][1], None)
            await asyncio.sleep(0.02)


async def start_state_clients(workload: Workload, pairs: int) -> list[asyncio.Task[None]]:
    tasks = []
    async with httpx2.AsyncClient(timeout=TIMEOUT) as http:
        for pair in range(pairs):
            session = await session_with_retries(http, workload.url, f"faults-pair-{pair}")
            first, second = f"c{2 * pair}", f"c{2 * pair + 1}"
            tasks.append(asyncio.create_task(state_client(workload, first, second, session)))
            tasks.append(asyncio.create_task(state_client(workload, second, first, session)))
    return tasks


# Ticker calls.

TICKS = 20
INTERVAL_MS = 100


@dataclass
class SSEEvent:
    id: str | None
    data: str


async def sse_events(response: httpx2.Response) -> AsyncIterator[SSEEvent]:
    event_id, data = None, []
    async for line in response.aiter_lines():
        if line == "":
            if event_id is not None or data:
                yield SSEEvent(event_id, "\n".join(data))
            event_id, data = None, []
        elif line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


@dataclass
class TickerState:
    call: TickerCall
    request_id: int
    last_event: str | None = None

    def take(self, event: SSEEvent, stream: str) -> bool:
        """Records one event; True once the call has ended."""
        if event.id:
            self.last_event = event.id
        if not event.data:
            return False
        message = json.loads(event.data)
        if not isinstance(message, dict):
            self.call.odd.append(f"{event.id}: {event.data[:200]}")
            return False
        if message.get("method") == "notifications/message":
            tick = str(message["params"]["data"])
            self.call.ticks.append([int(tick.split()[1]), event.id, stream])
            return False
        if message.get("id") == self.request_id and event.id is None:
            # An answer the server could not store (its storage failed while it followed the
            # stream): the call may still end well, so the client resumes from its last id.
            self.call.unstored.append(json.dumps(message.get("error"))[:200])
            return False
        if message.get("id") == self.request_id:
            if "error" in message:
                self.call.result = f"error {message['error'].get('code')}: {message['error'].get('message')}"
            else:
                self.call.result = message["result"]["content"][0]["text"]
            return True
        return False


async def first_stream(http: httpx2.AsyncClient, url: str, state: TickerState, drop_after: int) -> bool:
    """The call's own stream, dropped after `drop_after` ticks; True once the call has ended."""
    body = rpc(state.request_id, "tools/call", {"name": "ticker", "arguments": {"count": TICKS, "interval_ms": INTERVAL_MS}})
    headers = {**SSE_HEADERS, **session_headers(state.call.session)}
    async with http.stream("POST", url, content=body, headers=headers, timeout=httpx2.Timeout(5.0, read=10.0)) as response:
        state.call.instances.append(upstream(response, "?"))
        if response.status_code != 200:
            raise CallFailed(f"ticker: HTTP {response.status_code}")
        async for event in sse_events(response):
            if state.take(event, "first"):
                return True
            if len(state.call.ticks) >= drop_after:
                return False
    return False


async def resume_stream(http: httpx2.AsyncClient, url: str, state: TickerState) -> bool:
    headers = {"accept": "text/event-stream", "last-event-id": state.last_event or "", **session_headers(state.call.session)}
    async with http.stream("GET", url, headers=headers, timeout=httpx2.Timeout(5.0, read=15.0)) as response:
        state.call.instances.append(upstream(response, "?"))
        if response.status_code != 200:
            raise CallFailed(f"resume: HTTP {response.status_code}")
        async for event in sse_events(response):
            if state.take(event, "resume"):
                return True
    return False


async def one_ticker(workload: Workload, http: httpx2.AsyncClient, name: str, deadline: float) -> None:
    session = await session_with_retries(http, workload.url, name)
    call = TickerCall(session=session, count=TICKS, start=workload.recorder.now(), end=0.0)
    state = TickerState(call, workload.next_id())
    try:
        ended = await first_stream(http, workload.url, state, drop_after=random.randint(2, 8))
    except (httpx2.HTTPError, CallFailed):
        ended = False
    if state.last_event is None:
        return  # the call never started (its instance was down): nothing to resume
    while not ended and workload.recorder.now() < deadline:
        try:
            ended = await resume_stream(http, workload.url, state)
        except (httpx2.HTTPError, CallFailed):
            pass
        if not ended:
            await asyncio.sleep(0.3)
    call.end = workload.recorder.now()
    workload.recorder.add(call)


async def ticker_client(workload: Workload, name: str) -> None:
    async with httpx2.AsyncClient(timeout=TIMEOUT) as http:
        while not workload.stop.is_set():
            # A call that started before the stop may take its time to end: up to a minute.
            try:
                await one_ticker(workload, http, name, workload.recorder.now() + 60)
            except (httpx2.HTTPError, CallFailed):
                await asyncio.sleep(0.5)
            except Exception as error:  # noqa: BLE001 (a harness bug must not end the run: report it, go on)
                print(f"ticker client {name}: {type(error).__name__}: {error}", file=sys.stderr)
                await asyncio.sleep(0.5)
            await asyncio.sleep(0.2)

"""The processes a fault run starts on loopback: mcp-session-server instances, nginx in front
of them, and a TCP proxy that can cut one instance off from the database.

The partition is a proxy rather than a network namespace: every process stays on 127.0.0.1
(no root-only `ip netns`, no second PostgreSQL listen address), and cutting the proxy is what a
partition does to the instance behind it: bytes stop arriving in both directions and no
connection is closed. When it heals, the connections that lost bytes are reset (TCP would have
given up on them: a stream that lost bytes cannot go on), and new ones pass.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Instance:
    """One mcp-session-server process on a fixed loopback port."""

    def __init__(self, name: str, binary: str, storage: str, consistency: str, directory: Path) -> None:
        self.name = name
        self.binary = binary
        self.storage = storage
        self.consistency = consistency
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.address}/mcp"
        self.log_path = directory / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.paused = False

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [self.binary, "--host", "127.0.0.1", "--port", str(self.port), "--storage", self.storage,
             "--cache", "lru", "--bus", "auto", "--consistency", self.consistency],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    async def wait_listening(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} did not listen on {self.address} within {timeout} s; see {self.log_path}")

    async def is_ready(self, http: httpx2.AsyncClient) -> bool:
        try:
            response = await http.get(f"http://{self.address}/ready", timeout=2)
            return response.status_code == 200
        except httpx2.HTTPError:
            return False

    def signal(self, number: int) -> None:
        assert self.process
        self.process.send_signal(number)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            if self.paused:
                self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(10)

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self.signal(signal.SIGCONT)
        self.paused = False


class Nginx:
    """nginx round-robin over the instances, no sticky sessions; X-Upstream names the instance
    that answered."""

    def __init__(self, directory: Path, instances: list[Instance]) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.config = directory / "nginx.conf"
        upstreams = "".join(f"        server {i.address};\n" for i in instances)
        user = "user root;\n" if os.getuid() == 0 else ""
        (directory / "tmp").mkdir(exist_ok=True)
        self.config.write_text(f"""{user}worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {directory}/tmp/body;
    proxy_temp_path {directory}/tmp/proxy;
    fastcgi_temp_path {directory}/tmp/fastcgi;
    uwsgi_temp_path {directory}/tmp/uwsgi;
    scgi_temp_path {directory}/tmp/scgi;
    upstream mcp {{
{upstreams}        keepalive 64;
        keepalive_timeout 5s;
    }}
    server {{
        listen 127.0.0.1:{self.port};
        location /mcp {{
            proxy_pass http://mcp;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_connect_timeout 1s;
            proxy_read_timeout 1h;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
""")

    def start(self) -> None:
        subprocess.run(["nginx", "-p", str(self.directory), "-c", str(self.config)], check=True)

    def stop(self) -> None:
        pid = self.directory / "nginx.pid"
        if pid.exists():
            subprocess.run(["nginx", "-p", str(self.directory), "-c", str(self.config), "-s", "quit"], capture_output=True)
            for _ in range(50):
                if not pid.exists():
                    break
                time.sleep(0.1)


@dataclass
class Link:
    """One proxied connection: its two ends, and whether it is a change bus's (its startup
    message names the application `mcp-bus-...`)."""

    ends: tuple[asyncio.StreamWriter, asyncio.StreamWriter]
    bus: bool = False
    opening: bytes = b""

    def saw(self, data: bytes) -> None:
        if not self.bus and len(self.opening) < 8192:
            self.opening += data
            self.bus = BUS_APPLICATION in self.opening


BUS_APPLICATION = b"application_name\x00mcp-bus-"


class PartitionProxy:
    """A TCP proxy from a loopback port to the database that can stop passing bytes: of every
    connection (a partition), or of the change bus's connections only (a stall: what a NAT or
    firewall that forgets a long-lived idle connection does)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.cut = False
        self.cut_bus = False
        self.pipes: set[asyncio.Task[None]] = set()
        self.damaged: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.accept, "127.0.0.1", self.port)

    async def accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            while self.cut:
                # A connection opened during the partition: accepted by the kernel, never answered.
                self.damaged.add(client_writer)
                if await client_reader.read(65536) == b"":
                    return
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.close()
            return
        link = Link((client_writer, server_writer))
        for source, sink, outgoing in ((client_reader, server_writer, True), (server_reader, client_writer, False)):
            task = asyncio.create_task(self.pipe(source, sink, link, outgoing))
            self.pipes.add(task)
            task.add_done_callback(self.pipes.discard)

    async def pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, link: Link, outgoing: bool) -> None:
        try:
            while data := await source.read(65536):
                if outgoing:
                    link.saw(data)
                if self.cut or (self.cut_bus and link.bus):
                    # Dropped, as a partition drops packets; the connection is beyond repair.
                    self.damaged.update(link.ends)
                    continue
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for end in link.ends:
                end.close()

    def partition(self) -> None:
        self.cut = True

    def stall_bus(self) -> None:
        self.cut_bus = True

    def heal(self) -> None:
        self.cut = self.cut_bus = False
        for writer in self.damaged:
            transport = writer.transport
            if isinstance(transport, asyncio.Transport):
                transport.abort()
        self.damaged.clear()

    async def stop(self) -> None:
        if self.server:
            self.server.close()
        for task in list(self.pipes):
            task.cancel()

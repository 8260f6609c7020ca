"""The fault run's container topology: the compose project `scripts/cluster start --containers
--storage postgres` runs (docker/compose.yaml: PostgreSQL, three instances, nginx), driven with
podman. It offers the harness what the local topology does: the instances (each reached from
here at its container address, as the probes and readiness checks need), nginx's published
endpoint, and the six faults.

- kill: `podman kill -s KILL` the instance's container; 3 s later `podman start` it, unless its
  restart policy (`unless-stopped`) already did. It may come back with another address: nginx
  resolves the instances' name as requests come, and the harness reads the address again.
- pause: `podman pause` (the cgroup freezer: every process of the container stops, as SIGSTOP
  stops one), 4 s, `podman unpause`.
- db-restart: `podman stop` the PostgreSQL container (SIGINT, PostgreSQL's fast shutdown), 2 s,
  `podman start`, until `pg_isready`.
- bus-kill: `pg_terminate_backend` of every LISTEN connection, by psql inside that container.
- bus-stall and partition: packet filters (iptables) in the PostgreSQL container's network
  namespace, entered from the host with nsenter: every packet between that container and
  instance 3 is dropped (partition), or only those of instance 3's LISTEN connection, found by
  its port in pg_stat_activity (stall). Nothing is closed, a connection opened meanwhile is never
  answered, nginx still reaches the instance; healing removes the rules and TCP retransmits what
  was lost. Unlike the local proxy, the stall holds the bus connection of the moment only: a
  bus that reconnects meanwhile gets through.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import httpx2

from shell import log, run  # noqa: E402

SERVICES = ["mcp-1", "mcp-2", "mcp-3"]


async def container_of(project: str, service: str) -> str:
    ids = (await run("podman", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}",
                     "--filter", f"label=com.docker.compose.service={service}")).split()
    if not ids:
        raise RuntimeError(f"no container of service {service} in compose project {project}: is `scripts/cluster start --containers` running?")
    return ids[0]


async def inspect(container: str) -> dict:
    return json.loads(await run("podman", "inspect", container))[0]


async def address_of(container: str) -> str:
    networks = (await inspect(container))["NetworkSettings"]["Networks"]
    return next(iter(networks.values()))["IPAddress"]


class ContainerInstance:
    """One instance's container; `address` is its container address and port, as nginx's
    X-MCP-Upstream names it."""

    def __init__(self, name: str, service: str, container: str) -> None:
        self.name = name
        self.service = service
        self.container = container
        self.ip = ""

    @property
    def address(self) -> str:
        return f"{self.ip}:8080"

    @property
    def url(self) -> str:
        return f"http://{self.address}/mcp"

    async def refresh(self) -> None:
        """The container's address, which a restart may change (empty while it is stopped)."""
        try:
            self.ip = await address_of(self.container)
        except (RuntimeError, KeyError, StopIteration, json.JSONDecodeError):
            self.ip = ""

    async def running(self) -> bool:
        return (await run("podman", "inspect", "-f", "{{.State.Status}}", self.container, check=False)) == "running"

    async def is_ready(self, http: httpx2.AsyncClient) -> bool:
        if not self.ip:
            return False
        try:
            response = await http.get(f"http://{self.address}/ready", timeout=2)
            return response.status_code == 200
        except httpx2.HTTPError:
            return False


@dataclass
class Endpoint:
    url: str


@dataclass
class ContainerCluster:
    project: str
    instances: list[ContainerInstance]
    nginx: Endpoint
    postgres: str  # the PostgreSQL container
    rules: list[list[str]] = field(default_factory=list)  # iptables rules in force, to remove when healing

    @classmethod
    async def find(cls, project: str, url: str) -> "ContainerCluster":
        instances = [ContainerInstance(f"i{n + 1}", service, await container_of(project, service)) for n, service in enumerate(SERVICES)]
        for instance in instances:
            await instance.refresh()
        return cls(project, instances, Endpoint(url), await container_of(project, "postgres"))

    async def wait_ready(self, timeout: float = 90) -> bool:
        deadline = time.monotonic() + timeout
        refreshed = time.monotonic()
        async with httpx2.AsyncClient() as http:
            while time.monotonic() < deadline:
                ready = await asyncio.gather(*(i.is_ready(http) for i in self.instances))
                if all(ready):
                    return True
                if time.monotonic() - refreshed > 2:
                    # An instance restarted meanwhile may have another address.
                    for instance, ok in zip(self.instances, ready):
                        if not ok:
                            await instance.refresh()
                    refreshed = time.monotonic()
                await asyncio.sleep(0.2)
        return False

    async def check_reachable(self) -> None:
        """The probes and readiness checks go from here to each container's address (podman's
        rootful bridge network routes to the host)."""
        if not await self.wait_ready(60):
            raise RuntimeError("the instances' container addresses do not answer GET /ready from here within 60 s: "
                               + ", ".join(i.address for i in self.instances))

    async def psql(self, sql: str) -> str:
        return await run("podman", "exec", "-e", "PGPASSWORD=mcp", self.postgres, "psql", "-h", "127.0.0.1", "-U", "mcp",
                         "-d", "mcp_sessions", "-tAc", sql)

    # The packet filters, inside the PostgreSQL container's network namespace.

    async def iptables(self, *arguments: str) -> str:
        pid = await run("podman", "inspect", "-f", "{{.State.Pid}}", self.postgres)
        return await run("nsenter", "-t", pid, "-n", "iptables", "-w", *arguments)

    async def filter(self, action: str, rule: list[str]) -> None:
        await self.iptables(action, *rule)

    async def dropped(self) -> int:
        """Packets the DROP rules in force have dropped."""
        total = 0
        for chain in ("INPUT", "OUTPUT"):
            for line in (await self.iptables("-L", chain, "-v", "-n", "-x")).splitlines():
                fields = line.split()
                if len(fields) > 2 and fields[2] == "DROP" and fields[0].isdigit():
                    total += int(fields[0])
        return total

    async def cut(self, rules: list[list[str]]) -> None:
        for rule in rules:
            await self.filter("-I", rule)
            self.rules.append(rule)

    async def heal(self) -> None:
        if self.rules:
            log(f"healing: the packet filters dropped {await self.dropped()} packets")
        while self.rules:
            await self.filter("-D", self.rules.pop())

    # The faults: each injects, holds, and heals; it returns what it hit.

    async def kill_instance(self) -> str:
        instance = self.instances[0]
        before = instance.address
        await run("podman", "kill", "-s", "KILL", instance.container)
        await asyncio.sleep(3)
        if await instance.running():
            how = "its restart policy started it again"
        else:
            how = "podman start"
            await run("podman", "start", instance.container, check=False)
        for _ in range(100):
            if await instance.running():
                break
            await asyncio.sleep(0.2)
        await instance.refresh()
        log(f"{instance.name} killed at {before}; {how}, now at {instance.address}")
        return instance.name

    async def pause_instance(self) -> str:
        instance = self.instances[1]
        await run("podman", "pause", instance.container)
        try:
            await asyncio.sleep(4)
        finally:
            await run("podman", "unpause", instance.container)
        return instance.name

    async def restart_database(self) -> str:
        await run("podman", "stop", "-t", "30", self.postgres)
        await asyncio.sleep(2)
        await run("podman", "start", self.postgres)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (await run("podman", "exec", self.postgres, "pg_isready", "-h", "127.0.0.1", "-U", "mcp", "-d", "mcp_sessions",
                          check=False)).endswith("accepting connections"):
                break
            await asyncio.sleep(0.2)
        return "postgres"

    async def kill_bus_connections(self) -> str:
        killed = await self.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name LIKE 'mcp-bus-%'")
        return f"{killed} buses"

    async def stall_bus(self) -> str:
        instance = self.instances[2]
        ports = (await self.psql("SELECT client_port FROM pg_stat_activity WHERE application_name LIKE 'mcp-bus-%' "
                                 f"AND client_addr = '{instance.ip}'")).split()
        if not ports:
            raise RuntimeError(f"no bus connection of {instance.name} ({instance.ip}) in pg_stat_activity")
        try:
            await self.cut([rule for port in ports for rule in (
                ["INPUT", "-s", instance.ip, "-p", "tcp", "--sport", port, "-j", "DROP"],
                ["OUTPUT", "-d", instance.ip, "-p", "tcp", "--dport", port, "-j", "DROP"])])
            await asyncio.sleep(6)
        finally:
            await self.heal()
        return f"{instance.name} bus"

    async def partition_instance(self) -> str:
        instance = self.instances[2]
        try:
            await self.cut([["INPUT", "-s", instance.ip, "-j", "DROP"], ["OUTPUT", "-d", instance.ip, "-j", "DROP"]])
            await asyncio.sleep(6)
        finally:
            await self.heal()
        return instance.name

#!/usr/bin/env python3
"""The fault harness: a cluster on loopback, clients working through nginx, faults injected one
after another with calm periods between them, and the history checked at the end.

Run by `scripts/faults` (which starts the database and builds the server); alone:

    python3 Tests/faults/harness.py --binary .build/debug/mcp-session-server \
        --postgres postgres://mcp:mcp@127.0.0.1:54330/mcp_sessions --duration 180

Topology: three mcp-session-server instances (`--cache lru --bus auto`) over one PostgreSQL,
each run in a schema of its own; the third reaches the database (storage and bus) through a TCP
proxy that the partition cuts; nginx round-robin, no sticky sessions, in front.

With --containers it runs against the compose cluster instead (`scripts/faults --containers`
starts it with `scripts/cluster start --containers --storage postgres`): the same clients,
faults and checks through its published nginx, the faults made with podman (containers.py).

Faults, in order: kill (SIGKILL instance 1, start it again), pause (SIGSTOP instance 2, then
SIGCONT), db-restart (the database stopped and started), bus-kill (pg_terminate_backend of
every instance's LISTEN connection), bus-stall (instance 3's bus connection silently dropping
every byte, as a NAT or firewall that forgot the connection does, while its storage connections
work), partition (instance 3 cut off from the database and bus, then healed). After each heals: every instance ready again, then a read of every client's key
sent straight to every instance (the probes). A sentinel session, read on every instance before
each fault and written during it, shows a front that kept a copy from before an outage.

Writes the history (JSON lines) to --dir/history.jsonl and prints the checker's report; the
exit status is the checker's.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent))
import checker  # noqa: E402
from clients import CallFailed, Workload, call_tool, parse_value, session_with_retries, start_state_clients, ticker_client, timed_call  # noqa: E402
from history import Fault, Op, Recorder, load  # noqa: E402
from containers import ContainerCluster  # noqa: E402
from shell import log, run as run_command  # noqa: E402
from topology import Instance, Nginx, PartitionProxy  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Cluster:
    instances: list[Instance]
    nginx: Nginx
    proxy: PartitionProxy
    postgres_url: str
    services: Path

    async def wait_ready(self, timeout: float = 90) -> bool:
        deadline = time.monotonic() + timeout
        async with httpx2.AsyncClient() as http:
            while time.monotonic() < deadline:
                ready = await asyncio.gather(*(i.is_ready(http) for i in self.instances))
                if all(ready):
                    return True
                await asyncio.sleep(0.2)
        return False

    # The faults: each injects, holds, and heals; it returns what it hit.

    async def kill_instance(self) -> str:
        instance = self.instances[0]
        instance.kill()
        await asyncio.sleep(3)
        instance.start()
        await instance.wait_listening()
        return instance.name

    async def pause_instance(self) -> str:
        instance = self.instances[1]
        instance.pause()
        await asyncio.sleep(4)
        instance.resume()
        return instance.name

    async def restart_database(self) -> str:
        await run_command(str(self.services), "stop", "postgres-faults")
        await asyncio.sleep(2)
        await run_command(str(self.services), "start", "postgres-faults")
        return "postgres"

    async def kill_bus_connections(self) -> str:
        killed = await run_command("psql", self.postgres_url, "-tAc",
                                   "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name LIKE 'mcp-bus-%'")
        return f"{killed} buses"

    async def stall_bus(self) -> str:
        self.proxy.stall_bus()
        await asyncio.sleep(6)
        self.proxy.heal()
        return f"{self.instances[2].name} bus"

    async def partition_instance(self) -> str:
        self.proxy.partition()
        await asyncio.sleep(6)
        self.proxy.heal()
        return self.instances[2].name


# Each topology (Cluster here, ContainerCluster in containers.py) has a method of each name.
FAULTS: list[tuple[str, str]] = [
    ("kill", "kill_instance"), ("pause", "pause_instance"), ("db-restart", "restart_database"),
    ("bus-kill", "kill_bus_connections"), ("bus-stall", "stall_bus"), ("partition", "partition_instance"),
]
# About how long the faults' windows last together on a slow machine, to spread the calm periods.
EXPECTED_FAULT_SECONDS = 50
SETTLE_SECONDS = 2.0


Topology = Cluster | ContainerCluster


async def probe(cluster: Topology, workload: Workload) -> None:
    """A read of every client's current key, sent straight to every instance."""
    keys = list(workload.current_keys.values())
    async with httpx2.AsyncClient() as http:
        for instance in cluster.instances:
            for session, key in keys:
                await probe_one(workload, http, instance, session, key)


async def probe_one(workload: Workload, http: httpx2.AsyncClient, instance: Instance, session: str, key: str) -> None:
    deadline = workload.recorder.now() + 10
    while True:
        start = workload.recorder.now()
        try:
            text, _ = await call_tool(http, instance.url, session, workload.next_id(), "state_get", {"key": key})
            workload.recorder.add(Op("probe", f"probe-{instance.name}", session, key, parse_value(text), start,
                                     workload.recorder.now(), "ok", instance.address))
            return
        except CallFailed as error:
            if workload.recorder.now() > deadline:
                workload.recorder.add(Op("probe", f"probe-{instance.name}", session, key, None, start,
                                         workload.recorder.now(), "error", instance.address, str(error)))
                return
            await asyncio.sleep(0.3)


@dataclass
class Sentinel:
    """A session only the harness writes, once per fault while it lasts: every instance reads it
    just before the fault (so every front holds it), an instance the fault spares takes the
    write, and the probes after the fault read it on every instance. A front that kept its copy
    from before the outage (no flush when the bus dropped or came back) serves the old value,
    unless the version check (`read-your-writes`) catches it."""

    session: str
    generation: int = 0
    value: int = 0

    @property
    def key(self) -> str:
        return f"sentinel/{self.generation}"

    def register(self, workload: Workload) -> None:
        workload.current_keys["sentinel"] = (self.session, self.key)
        workload.keys[self.key] = self.session

    async def write(self, workload: Workload, url: str, patience: float = 30) -> None:
        """The next value, until one is acknowledged; after an unknown outcome, on a new key."""
        deadline = workload.recorder.now() + patience
        async with httpx2.AsyncClient() as http:
            while workload.recorder.now() < deadline:
                self.value += 1
                self.register(workload)
                op = await timed_call(workload, http, url, "write", "sentinel", self.session, self.key, self.value)
                if op.outcome == "ok":
                    return
                self.generation, self.value = self.generation + 1, 0
                await asyncio.sleep(0.5)

    async def warm(self, cluster: Topology, workload: Workload) -> None:
        async with httpx2.AsyncClient() as http:
            for instance in cluster.instances:
                await timed_call(workload, http, instance.url, "read", "sentinel-reader", self.session, self.key, None)


# The instance that takes the sentinel's write during each fault: one the fault spares.
SPARED = {"kill": 1}


async def inject(cluster: Topology, workload: Workload, sentinel: Sentinel, name: str, fault: Callable[[], Awaitable[str]]) -> None:
    await sentinel.warm(cluster, workload)
    start = workload.recorder.now()
    log(f"fault {name} at {start:.1f} s")

    async def write_meanwhile() -> None:
        await asyncio.sleep(1)
        await sentinel.write(workload, cluster.instances[SPARED.get(name, 0)].url)

    target, _ = await asyncio.gather(fault(), write_meanwhile())
    healed = workload.recorder.now()
    if not await cluster.wait_ready():
        log(f"after {name}, not every instance was ready within 90 s")
    await asyncio.sleep(SETTLE_SECONDS)
    workload.recorder.add(Fault(name, target, start, healed, workload.recorder.now()))
    await probe(cluster, workload)


async def final_reads(workload: Workload) -> None:
    """Every key ever written, read through nginx on a fresh connection."""
    async with httpx2.AsyncClient() as http:
        for key, session in workload.keys.items():
            deadline = workload.recorder.now() + 30
            while True:
                start = workload.recorder.now()
                try:
                    text, instance = await call_tool(http, workload.url, session, workload.next_id(), "state_get", {"key": key})
                    workload.recorder.add(Op("final", "final", session, key, parse_value(text), start, workload.recorder.now(), "ok", instance))
                    break
                except CallFailed as error:
                    if workload.recorder.now() > deadline:
                        workload.recorder.add(Op("final", "final", session, key, None, start, workload.recorder.now(), "error", None, str(error)))
                        break
                    await asyncio.sleep(0.5)


async def run(cluster: Topology, recorder: Recorder, duration: float, pairs: int, tickers: int) -> None:
    workload = Workload(cluster.nginx.url, recorder, asyncio.Event())
    async with httpx2.AsyncClient() as http:
        sentinel = Sentinel(await session_with_retries(http, workload.url, "faults-sentinel"))
    await sentinel.write(workload, workload.url)
    tasks = await start_state_clients(workload, pairs)
    tasks += [asyncio.create_task(ticker_client(workload, f"ticker-{n}")) for n in range(tickers)]
    calm = max(4.0, (duration - EXPECTED_FAULT_SECONDS) / (len(FAULTS) + 1))
    log(f"clients working through nginx; a fault every {calm:.0f} s of calm")
    for name, method in FAULTS:
        await asyncio.sleep(calm)
        await inject(cluster, workload, sentinel, name, getattr(cluster, method))
    await asyncio.sleep(calm)
    log("stopping the clients (a ticker call in flight ends first)")
    workload.stop.set()
    await asyncio.gather(*tasks)
    await final_reads(workload)


async def start_cluster(args: argparse.Namespace, directory: Path, storage: str, proxied: str) -> Cluster:
    proxy = PartitionProxy(int(args.postgres.split("@", 1)[1].split("/", 1)[0].split(":")[1]))
    await proxy.start()
    proxied_storage = storage.replace(proxied, f"127.0.0.1:{proxy.port}")
    instances = [Instance(f"i{n + 1}", args.binary, proxied_storage if n == 2 else storage, args.consistency, directory) for n in range(3)]
    for instance in instances:
        instance.start()
    for instance in instances:
        await instance.wait_listening()
    nginx = Nginx(directory, instances)
    nginx.start()
    cluster = Cluster(instances, nginx, proxy, args.postgres, ROOT / "scripts/services")
    if not await cluster.wait_ready():
        raise RuntimeError(f"the instances were not ready within 90 s; see {directory}/i*.log")
    return cluster


async def main_async(args: argparse.Namespace) -> int:
    directory = Path(args.dir).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("i*.log"):
        old.unlink()
    schema = f"faults_{uuid.uuid4().hex[:10]}"
    host = args.postgres.split("@", 1)[1].split("/", 1)[0]
    storage = f"{args.postgres}{'&' if '?' in args.postgres else '?'}schema={schema}"
    cluster: Cluster | None = None
    history = directory / "history.jsonl"
    try:
        cluster = await start_cluster(args, directory, storage, host)
        log(f"3 instances ({args.consistency}) behind nginx on {cluster.nginx.url}; instance i3 through the partition proxy")
        recorder = Recorder(history, {"instances": [i.address for i in cluster.instances], "consistency": args.consistency,
                                      "duration": args.duration, "schema": schema})
        await run(cluster, recorder, args.duration, args.pairs, args.tickers)
        recorder.close()
    finally:
        if cluster:
            cluster.nginx.stop()
            for instance in cluster.instances:
                instance.kill()
            await cluster.proxy.stop()
        if args.keep_schema:
            log(f"the run's tables are kept in schema {schema}")
        else:
            subprocess.run(["psql", args.postgres, "-qc", f"SET client_min_messages = warning; DROP SCHEMA IF EXISTS {schema} CASCADE"],
                           capture_output=True, timeout=60)
    log(f"history in {history}; checking it")
    return 1 if checker.report(load(history)) else 0


async def main_containers(args: argparse.Namespace) -> int:
    """Against the container cluster `scripts/cluster start --containers --storage postgres` runs
    (scripts/faults --containers starts and stops it)."""
    directory = Path(args.dir).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    history = directory / "history.jsonl"
    cluster = await ContainerCluster.find(args.project, args.url)
    try:
        await cluster.check_reachable()
        log(f"3 instance containers ({', '.join(i.address for i in cluster.instances)}) behind nginx on {args.url}")
        recorder = Recorder(history, {"instances": [i.address for i in cluster.instances], "consistency": args.consistency,
                                      "duration": args.duration, "topology": f"containers ({args.project})"})
        await run(cluster, recorder, args.duration, args.pairs, args.tickers)
        recorder.close()
    finally:
        await cluster.heal()
    log(f"history in {history}; checking it")
    return 1 if checker.report(load(history)) else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(ROOT / ".build/debug/mcp-session-server"))
    parser.add_argument("--postgres", default="postgres://mcp:mcp@127.0.0.1:54330/mcp_sessions",
                        help="the database the faults restart (scripts/services' postgres-faults)")
    parser.add_argument("--duration", type=float, default=180, help="seconds of work, faults included (default 180)")
    parser.add_argument("--pairs", type=int, default=3, help="pairs of state clients, each pair sharing a session (default 3)")
    parser.add_argument("--tickers", type=int, default=2, help="ticker clients (default 2)")
    parser.add_argument("--consistency", choices=["read-your-writes", "eventual"], default="read-your-writes")
    parser.add_argument("--keep-schema", action="store_true", help="keep the run's schema (to look into a failure)")
    parser.add_argument("--dir", default=str(ROOT / ".faults"), help="logs, nginx's files and the history (default .faults/)")
    parser.add_argument("--containers", action="store_true",
                        help="run against the container cluster (scripts/cluster start --containers --storage postgres) instead")
    parser.add_argument("--url", default="http://127.0.0.1:8100/mcp", help="with --containers: nginx's published endpoint")
    parser.add_argument("--project", default="mcp-postgres", help="with --containers: the compose project")
    args = parser.parse_args()
    return asyncio.run(main_containers(args) if args.containers else main_async(args))


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Cluster figures for scripts/bench, measured across real processes over one PostgreSQL or Redis.

  cluster.py NODE URL [SECTIONS]      SECTIONS: a comma-separated subset of propagation,cost,load

NODE is the TieredClusterNode executable; URL a postgres:// or redis:// URL (figures over Redis
carry " over Redis" in their names, and PUBLISH where PostgreSQL has NOTIFY). Prints JSON lines:
- invalidation propagation, from the moment one instance starts a write to the moment another
  sees its cached copy evicted (an upper bound on commit-to-eviction), p50 and p99, for each bus
  (with writes spaced beyond the gap of the buses that have one, and back to back);
- the cost of a write at one caller through the tier and each bus, against the same write on
  the bare PostgreSQL storage, each bus-on run between two bare runs in one process kind;
- write throughput of three instances sharing the database with the bus off, and with it on
  in each mode (NOTIFY inside each write; inside writes at least 10 ms apart and batched after
  the commits between; batched NOTIFY after commits, at the default gap between NOTIFYs and at
  2 and 50 ms), as ratios.
"""
import json, subprocess, sys, time, uuid

NODE, URL = sys.argv[1], sys.argv[2]
SECTIONS = (sys.argv[3] if len(sys.argv) > 3 else "propagation,cost,load").split(",")
REDIS = URL.startswith("redis")
BACKEND = "Redis" if REDIS else "PostgreSQL"
SUFFIX = " over Redis" if REDIS else ""


def named(text):
    """A label in the backend's words."""
    return text.replace("NOTIFY", "PUBLISH") if REDIS else text


class Node:
    def __init__(self, schema, channel, name, mode):
        self.process = subprocess.Popen([NODE, URL, schema, channel, name, mode], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, bufsize=1)
        assert self.read() == "ready"

    def read(self):
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("node exited")
        return line.strip()

    def write(self, command):
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def send(self, command):
        self.write(command)
        return self.read()

    def close(self):
        self.process.kill()
        self.process.wait()


def fresh(prefix):
    name = prefix + uuid.uuid4().hex[:10]
    return name, "c" + name


def drop(schema):
    if REDIS:
        port = URL.split("://", 1)[1].split("/")[0].split("?")[0].rsplit(":", 1)[1]
        keys = subprocess.run(["redis-cli", "-p", port, "--scan", "--pattern", f"{schema}:*"], capture_output=True, text=True, check=True)
        for start in range(0, len(keys.stdout.split()), 500):
            subprocess.run(["redis-cli", "-p", port, "DEL", *keys.stdout.split()[start:start + 500]], capture_output=True, check=True)
        return
    subprocess.run(["psql", URL, "-qc", f"SET client_min_messages = warning; DROP SCHEMA IF EXISTS {schema} CASCADE"], check=True)


def propagation(mode, label, spacing=0.0, samples=500):
    schema, channel = fresh("bench_prop_")
    writer, reader = Node(schema, channel, "writer", mode), Node(schema, channel, "reader", mode)
    try:
        writer.send("create p1")
        delays, after_return = [], []
        for n in range(samples):
            for _ in range(1000):
                if reader.send("get-and-check-cached p1 k").endswith("cached yes"):
                    break
            reader.write("await-evicted p1 2000")
            time.sleep(max(spacing, 0.001))  # let the reader start watching before the write
            _, _, started, returned = writer.send(f"set-timed p1 k {n}").split()
            answer = reader.read()
            if answer.startswith("evicted"):
                delays.append((int(answer.split()[1]) - int(started)) / 1000)
                after_return.append((int(answer.split()[1]) - int(returned)) / 1000)
        lost = samples - len(delays)
        # The commit lies between the write's start and its return: the figure is from the start
        # (an upper bound), and from_return (a lower one) is given beside it.
        return [
            {"name": f"Invalidation propagation p{q}{SUFFIX}{named(label)}", "value": round(percentile(delays, q), 1), "unit": "us",
             "from_return": round(percentile(after_return, q), 1), "samples": len(delays), "timeouts": lost}
            for q in (50, 99)
        ]
    finally:
        writer.close()
        reader.close()
        drop(schema)


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q / 100))]


def throughput(mode, seconds=5, callers=8):
    schema, channel = fresh("bench_load_")
    nodes = [Node(schema, channel, f"n{i}", mode) for i in range(3)]
    try:
        for i, node in enumerate(nodes):
            node.write(f"load {seconds} {callers} n{i}")
        return sum(int(node.read().split()[1]) for node in nodes) / seconds
    finally:
        for node in nodes:
            node.close()
        drop(schema)


def propagation_section():
    # Writes 1 ms apart keep the machine warm. A bus with a gap (10 ms) sends a change at once
    # only when its last NOTIFY is older than the gap, so those are measured with writes 15 ms
    # apart, beside the attached bus at the same spacing (an idle machine wakes more slowly),
    # and back to back.
    for mode, label, spacing in [("attached", "", 0), ("attached", ", writes 15 ms apart", 0.015),
                                 ("attached:10", ", attached bus with 10 ms gap, writes 15 ms apart", 0.015),
                                 ("attached:10", ", attached bus with 10 ms gap, writes back to back", 0),
                                 ("standalone", ", batched bus, writes 15 ms apart", 0.015),
                                 ("standalone", ", batched bus, writes back to back", 0)]:
        for record in propagation(mode, label, spacing):
            print(json.dumps(record), flush=True)


def write_rate(schema, channel, mode, seconds=3):
    node = Node(schema, channel, "w", mode)
    try:
        node.write(f"load {seconds} 1 w")
        return int(node.read().split()[1]) / seconds
    finally:
        node.close()


def cost_section():
    # The write at one caller through the tier and a bus, beside the bare storage's: each
    # between two bare runs, compared with their mean, as the loads below.
    schema, channel = fresh("bench_cost_")
    try:
        bare = [write_rate(schema, channel, "bare")]
        for mode, label in [("attached", "attached bus"), ("attached:10", "attached bus with 10 ms gap"), ("standalone", "batched bus")]:
            on = write_rate(schema, channel, mode)
            bare.append(write_rate(schema, channel, "bare"))
            off = (bare[-2] + bare[-1]) / 2
            print(json.dumps({"name": f"Write through the tier at 1 caller{SUFFIX}, {label}", "value": round(on), "unit": "ops/s",
                              "peer": f"the bare {BACKEND} write", "peer_value": round(off), "ratio": round(on / off, 3)}), flush=True)
    finally:
        drop(schema)


def load_section():
    # Each bus-on load runs between two bus-off loads and is compared with their mean, so that
    # the machine drifting during the run does not land on one side of a ratio.
    modes = [("attached", "NOTIFY inside each write"), ("attached:10", "NOTIFY inside writes 10 ms apart, batched between"),
             ("standalone", "batched NOTIFY"),
             ("standalone:2", "batched NOTIFY, 2 ms gap"), ("standalone:50", "batched NOTIFY, 50 ms gap")]
    offs = [throughput("none")]
    for mode, label in modes:
        on = throughput(mode)
        offs.append(throughput("none"))
        off = (offs[-2] + offs[-1]) / 2
        print(json.dumps({"name": f"3 instances set-state{SUFFIX}, bus on ({named(label)})", "value": round(on), "unit": "ops/s",
                          "peer": "same load, bus off", "peer_value": round(off), "ratio": round(on / off, 3)}), flush=True)


for section in SECTIONS:
    {"propagation": propagation_section, "cost": cost_section, "load": load_section}[section]()

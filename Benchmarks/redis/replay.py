"""Has redis-benchmark repeat the exact commands our Redis storage sent, captured with MONITOR.

    replay.py MONITOR_LOG NAMES_FILE PORT [FLOOR_BINARY WORK_DIR]  ->  lines "Redis OPERATION cN RPS"

For each benchmark "Redis OPERATION cN" that ran (listed in NAMES_FILE), the capture's last
EVALSHA under the key prefix bench_OPERATION_cN is the command; redis-benchmark sends it from N
connections (one request in flight on each), as many times as takes a few seconds. With
FLOOR_BINARY (Tools/RedisFloor), the same command also goes through the floor of a Swift client
on SwiftNIO, with its callers on the event loop and on plain tasks: lines "NAME RPS" appended to
WORK_DIR/floor-loop.txt and WORK_DIR/floor-plain-task.txt.
"""

from __future__ import annotations

import json
import subprocess
import sys

REQUESTS = {"get-session": 100_000, "set-state": 100_000, "append-event": 100_000, "replay-100": 20_000}


def parse_monitor(line: str) -> list[str]:
    """The arguments of one MONITOR line: `TIME [DB ADDR] "ARG" "ARG" …`, each quoted the way
    Redis's sdscatrepr quotes (\\\\ \\" \\n \\r \\t \\a \\b \\xHH)."""
    arguments, i = [], line.index("]") + 1
    escapes = {"\\": "\\", '"': '"', "n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b"}
    while True:
        i = line.find('"', i)
        if i < 0:
            return arguments
        i += 1
        value = bytearray()
        while line[i] != '"':
            if line[i] == "\\":
                if line[i + 1] == "x":
                    value.append(int(line[i + 2 : i + 4], 16))
                    i += 4
                    continue
                value += escapes[line[i + 1]].encode()
                i += 2
            else:
                value += line[i].encode()
                i += 1
        arguments.append(value.decode("utf-8", errors="surrogateescape"))
        i += 1


def main() -> None:
    monitor, names, port = sys.argv[1], sys.argv[2], sys.argv[3]
    ran = set(open(names).read().splitlines())
    commands: dict[str, list[str]] = {}
    for line in open(monitor, errors="replace"):
        if '"EVALSHA"' not in line:
            continue
        arguments = parse_monitor(line)
        count = int(arguments[2])
        for key in arguments[3 : 3 + count]:
            if key.startswith("bench_"):
                commands[key.split(":", 1)[0]] = arguments
                break
    for operation, requests in REQUESTS.items():
        for callers in (1, 16):
            name = f"Redis {operation} c{callers}"
            prefix = f"bench_{operation.replace('-', '_')}_c{callers}"
            if name not in ran:
                continue
            if prefix not in commands:
                sys.exit(f"no EVALSHA under {prefix} in the MONITOR capture")
            run = subprocess.run(
                ["redis-benchmark", "-p", port, "-c", str(callers), "-n", str(requests), "--csv", *commands[prefix]],
                capture_output=True, text=True, check=True)
            # The last line: "COMMAND","rps","avg",…,"max" (7 figures after the command, whose
            # own quotes redis-benchmark does not escape, so it is read from the right).
            rps = float(run.stdout.strip().splitlines()[-1].split(",")[-7].strip('"'))
            print(f"{name} {rps}")
            if len(sys.argv) > 5:
                floor(sys.argv[4], sys.argv[5], name, port, callers, commands[prefix])


def floor(binary: str, work: str, name: str, port: str, callers: int, command: list[str]) -> None:
    """Runs RedisFloor on `command` with its callers on the event loop, then on plain tasks."""
    path = f"{work}/floor-command.json"
    with open(path, "w") as sink:
        json.dump(command, sink)
    for placement, flags in (("loop", []), ("plain-task", ["--plain-task"])):
        run = subprocess.run([binary, port, path, str(callers), "5", *flags], capture_output=True, text=True, check=True)
        with open(f"{work}/floor-{placement}.txt", "a") as sink:
            sink.write(f"{name} {run.stdout.strip()}\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The history checker of the fault harness: reads a history (JSON lines, see history.py) and
verifies what the cluster promises, whatever faults it went through.

    python3 Tests/faults/checker.py .faults/history.jsonl

Checks (each must find nothing; a violation prints the part of the history that shows it):

- acknowledged writes survive: the final read of every key, on a fresh connection after the
  run, returns the last acknowledged write or a later attempt whose outcome is unknown.
- reads return written values: every value read was written by some attempt (or is null
  before the first).
- read-your-writes: a client's read of its own key returns its last write acknowledged
  before the read began, or a later one.
- monotonic reads: no read of a key by a client returns an older value than one the same
  client read before.
- fresh reads across clients: a read of another client's key (the two share one session, and
  nginx sends them to any instance) returns every write acknowledged before the read began:
  what `--consistency read-your-writes` promises across instances.

With `--consistency eventual` (recorded in the history's first line) the three checks of reads
across instances are skipped (that mode does not promise them), and the probes allow the bus
1 s to deliver.
- no pre-outage value after a fault: a read sent straight to each instance once a fault has
  healed returns a value at least as new as every write acknowledged before it.
- ticker resumes exactly once: an interrupted `ticker` call resumed with Last-Event-ID (on
  whatever instance nginx picks) delivers every tick exactly once, in order, and ends with
  `done`, or with an error (the instance running it died, -32001, or storage failed) after a
  prefix of them.

Keys are named CLIENT/N: each key has one writer, who writes 1, 2, 3, ... and moves to a new
key after a write whose outcome is unknown, so a late commit of that write cannot overwrite
a later acknowledged one.

Exit status 0 when every check passed; the last line is `N passed, M failed`.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from history import Fault, History, Op, TickerCall, load  # noqa: E402

READS = ("read", "final", "probe")


@dataclass
class Violation:
    message: str
    excerpt: list[str]


@dataclass
class CheckResult:
    name: str
    checked: int
    violations: list[Violation] = field(default_factory=list)
    skipped: str | None = None


def eventual(index: "Index") -> bool:
    return index.history.settings.get("consistency") == "eventual"


ACROSS_INSTANCES = "not promised across instances with --consistency eventual"


def writer_of(key: str) -> str:
    return key.split("/", 1)[0]


def describe(op: Op) -> str:
    value = "null" if op.value is None else op.value
    where = f" on {op.instance}" if op.instance else ""
    error = f" ({op.error})" if op.error else ""
    return f"  {op.start:9.3f}-{op.end:9.3f}  {op.client:>8} {op.op:<5} {op.key:<10} = {value!s:<6} {op.outcome}{where}{error}"


class Index:
    """The history arranged by key, with the facts every check asks for."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.by_key: dict[str, list[Op]] = defaultdict(list)
        for op in sorted(history.ops, key=lambda o: o.start):
            self.by_key[op.key].append(op)

    def acked_writes(self, key: str) -> list[Op]:
        return [o for o in self.by_key[key] if o.op == "write" and o.outcome == "ok"]

    def attempted(self, key: str) -> set[int]:
        return {o.value for o in self.by_key[key] if o.op == "write" and o.value is not None}

    def floor(self, key: str, before: float, writer: str | None = None) -> Op | None:
        """The newest write of `key` acknowledged before `before` (by `writer`, if given)."""
        acked = [o for o in self.acked_writes(key) if o.end <= before and (writer is None or o.client == writer)]
        return max(acked, key=lambda o: o.value or 0, default=None)

    def excerpt(self, key: str, around: float, before: float = 1.0, after: float = 0.3, marked: tuple[Op, ...] = ()) -> list[str]:
        """The operations on `key` from `before` seconds before `around` to `after` seconds
        after it, `>>` before the ones the violation is about; then the faults at that time."""
        lines = [(">>" if any(o is m for m in marked) else "  ") + describe(o)[2:]
                 for o in self.by_key[key] if around - before <= o.end and o.start <= around + after]
        faults = [f for f in self.history.faults if f.start <= around + after and around - before <= f.end]
        lines += [f"  fault {f.name} on {f.target}: injected {f.start:.3f}, healed {f.healed:.3f}, window ends {f.end:.3f}" for f in faults]
        return lines


def stale(index: Index, read: Op, floor: Op | None) -> Violation | None:
    if floor is None or (read.value is not None and read.value >= (floor.value or 0)):
        return None
    return Violation(
        f"{read.op} of {read.key} by {read.client} at {read.start:.3f} returned {read.value}, but {floor.value} was "
        f"acknowledged at {floor.end:.3f}", index.excerpt(read.key, read.start, before=max(1.0, read.start - floor.start + 0.2), marked=(read, floor)))


def ok_reads(index: Index, kind: str) -> Iterable[Op]:
    return (o for o in index.history.ops if o.op == kind and o.outcome == "ok")


def check_durable(index: Index) -> CheckResult:
    result = CheckResult("acknowledged writes survive", 0)
    finals = {o.key: o for o in index.history.ops if o.op == "final"}
    for key in index.by_key:
        acked = index.acked_writes(key)
        attempted = index.attempted(key)
        if not attempted:
            continue
        result.checked += 1
        final = finals.get(key)
        last = max(acked, key=lambda o: o.value or 0, default=None)
        if final is None or final.outcome != "ok":
            result.violations.append(Violation(f"no final read of {key} succeeded", index.excerpt(key, final.start if final else 1e9, 1e9)))
        elif last is not None and (final.value is None or final.value < (last.value or 0)):
            result.violations.append(Violation(
                f"{key}: write of {last.value} acknowledged at {last.end:.3f} is lost; the final read returned {final.value}",
                index.excerpt(key, last.end, 2.0, 1e9)))
        elif final.value is not None and final.value not in attempted:
            result.violations.append(Violation(f"{key}: the final read returned {final.value}, never written", index.excerpt(key, final.start, 1e9)))
    return result


def check_written_values(index: Index) -> CheckResult:
    result = CheckResult("reads return written values", 0)
    for read in (o for o in index.history.ops if o.op in READS and o.outcome == "ok"):
        result.checked += 1
        if read.value is not None and read.value not in index.attempted(read.key):
            result.violations.append(Violation(f"{read.op} of {read.key} returned {read.value}, never written", index.excerpt(read.key, read.start)))
    return result


def check_read_your_writes(index: Index) -> CheckResult:
    result = CheckResult("read-your-writes", 0)
    if eventual(index):
        result.skipped = ACROSS_INSTANCES
        return result
    for read in ok_reads(index, "read"):
        if writer_of(read.key) != read.client:
            continue
        result.checked += 1
        if violation := stale(index, read, index.floor(read.key, read.start, read.client)):
            result.violations.append(violation)
    return result


def check_monotonic(index: Index) -> CheckResult:
    result = CheckResult("monotonic reads", 0)
    if eventual(index):
        result.skipped = ACROSS_INSTANCES
        return result
    seen: dict[tuple[str, str], Op] = {}
    for read in sorted(ok_reads(index, "read"), key=lambda o: o.start):
        result.checked += 1
        previous = seen.get((read.client, read.key))
        if previous and previous.value is not None and (read.value is None or read.value < previous.value):
            result.violations.append(Violation(
                f"{read.client} read {read.key} = {read.value} at {read.start:.3f} after reading {previous.value} at {previous.start:.3f}",
                index.excerpt(read.key, read.start, before=max(1.0, read.start - previous.start + 0.2), marked=(read, previous))))
        if previous is None or (read.value or 0) >= (previous.value or 0):
            seen[(read.client, read.key)] = read
    return result


def check_fresh_across_clients(index: Index) -> CheckResult:
    result = CheckResult("fresh reads across clients", 0)
    if eventual(index):
        result.skipped = ACROSS_INSTANCES
        return result
    for read in ok_reads(index, "read"):
        if writer_of(read.key) == read.client:
            continue
        result.checked += 1
        if violation := stale(index, read, index.floor(read.key, read.start)):
            result.violations.append(violation)
    return result


def check_probes(index: Index) -> CheckResult:
    """Reads sent to each instance directly after a fault healed. With eventual consistency an
    instance may lag by the bus's delay: writes acknowledged in the last `slack` seconds
    before the probe do not count."""
    result = CheckResult("no pre-outage value after a fault", 0)
    slack = 1.0 if eventual(index) else 0.0
    for probe in ok_reads(index, "probe"):
        result.checked += 1
        if violation := stale(index, probe, index.floor(probe.key, probe.start - slack)):
            violation.message = f"{probe.instance}: {violation.message}"
            result.violations.append(violation)
    unanswered = [o for o in index.history.ops if o.op == "probe" and o.outcome != "ok"]
    for probe in unanswered:
        result.checked += 1
        result.violations.append(Violation(f"probe of {probe.key} on {probe.instance} after a fault failed: {probe.error}", [describe(probe)]))
    return result


def describe_ticker(call: TickerCall) -> list[str]:
    ticks = ", ".join(f"{n}@{event}({stream})" for n, event, stream in call.ticks)
    return [f"  ticker {call.session} count {call.count} {call.start:.3f}-{call.end:.3f} on {' -> '.join(call.instances)}",
            f"  ticks: {ticks}", f"  result: {call.result}"]


def check_tickers(index: Index) -> CheckResult:
    result = CheckResult("ticker resumes exactly once", 0)
    for call in index.history.tickers:
        result.checked += 1
        numbers = [n for n, _, _ in call.ticks]
        problem = None
        if call.odd:
            problem = f"events that are not JSON-RPC messages: {call.odd}"
        elif len(set(numbers)) != len(numbers):
            duplicated = sorted({n for n in numbers if numbers.count(n) > 1})
            problem = f"ticks delivered twice: {duplicated}"
        elif numbers != list(range(len(numbers))):
            problem = f"ticks missing or out of order: {numbers}"
        elif call.result == "done" and len(numbers) != call.count:
            problem = f"done after {len(numbers)} of {call.count} ticks"
        elif call.result is None:
            problem = "the call never ended: no result, no error, after every resume"
        if problem:
            result.violations.append(Violation(f"ticker in session {call.session}: {problem}", describe_ticker(call)))
    return result


CHECKS: list[Callable[[Index], CheckResult]] = [
    check_durable, check_written_values, check_read_your_writes, check_monotonic,
    check_fresh_across_clients, check_probes, check_tickers,
]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0.0


def in_window(op: Op, fault: Fault) -> bool:
    return fault.start <= op.start <= fault.end


def worst_staleness(index: Index) -> tuple[int, float]:
    """Stale reads of any kind, and the longest: from the acknowledgement of the first write
    newer than what a read returned, to the read's start."""
    count, worst = 0, 0.0
    for read in (o for o in index.history.ops if o.op in ("read", "probe") and o.outcome == "ok"):
        newer = [w for w in index.acked_writes(read.key) if w.end <= read.start and (w.value or 0) > (read.value or 0)]
        if newer:
            count += 1
            worst = max(worst, read.start - min(w.end for w in newer))
    return count, worst


def figures(index: Index) -> list[str]:
    history = index.history
    ops = [o for o in history.ops if o.op in ("write", "read")]
    lines = [f"operations: {len(ops)} ({sum(o.op == 'write' for o in ops)} writes, {sum(o.op == 'read' for o in ops)} reads; "
             f"{sum(o.outcome == 'ok' for o in ops)} succeeded), {len(history.tickers)} interrupted ticker calls, "
             f"{sum(o.op == 'probe' for o in history.ops)} probes, {sum(o.op == 'final' for o in history.ops)} final reads",
             f"ticker calls: {sum(len(set(t.instances)) > 1 for t in history.tickers)} of {len(history.tickers)} resumed on another "
             f"instance than the one that ran them; {sum(t.result == 'done' for t in history.tickers)} ended done, "
             f"{sum((t.result or '').startswith('error -32001') for t in history.tickers)} with the instance-stopped error, "
             f"{sum((t.result or '').startswith('error') and not t.result.startswith('error -32001') for t in history.tickers)} with "
             f"another error; {sum(len(t.unstored) for t in history.tickers)} unstored error answers resumed after",
             f"faults injected: {len(history.faults)}"]
    for fault in history.faults:
        window = [o for o in ops if in_window(o, fault)]
        share = 100 * sum(o.outcome == "ok" for o in window) / len(window) if window else 0.0
        lines.append(f"  {fault.name:<10} {fault.target:<12} {fault.start:7.1f}-{fault.end:7.1f} s: "
                     f"availability {share:5.1f}% of {len(window)} operations")
    count, worst = worst_staleness(index)
    lines.append(f"worst staleness seen: {worst * 1000:.0f} ms ({count} stale reads)")
    calm = [o.end - o.start for o in ops if o.outcome == "ok" and not any(in_window(o, f) or f.start <= o.end <= f.end for f in history.faults)]
    lines.append(f"latency outside faults: p50 {percentile(calm, 0.5) * 1000:.1f} ms, p99 {percentile(calm, 0.99) * 1000:.1f} ms "
                 f"({len(calm)} operations)")
    return lines


def report(history: History, out=sys.stdout, limit: int = 5) -> int:
    index = Index(history)
    results = [check(index) for check in CHECKS]
    for result in results:
        if result.skipped:
            print(f"SKIP {result.name}: {result.skipped}", file=out)
            continue
        if not result.violations:
            print(f"PASS {result.name} ({result.checked} checked)", file=out)
            continue
        print(f"FAIL {result.name}: {len(result.violations)} of {result.checked}", file=out)
        for violation in result.violations[:limit]:
            print(f"  {violation.message}", file=out)
            for line in violation.excerpt:
                print(f"  {line}", file=out)
        if len(result.violations) > limit:
            print(f"  ... and {len(result.violations) - limit} more", file=out)
    for line in figures(index):
        print(line, file=out)
    failed = sum(bool(r.violations) for r in results)
    passed = sum(not r.violations and not r.skipped for r in results)
    print(f"{passed} passed, {failed} failed", file=out)
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("history", type=Path)
    parser.add_argument("--limit", type=int, default=5, help="violations printed per check (default 5)")
    args = parser.parse_args()
    return 1 if report(load(args.history), limit=args.limit) else 0


if __name__ == "__main__":
    sys.exit(main())

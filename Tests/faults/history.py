"""The history a fault run records, one JSON object a line, and reads back for the checker.

Line kinds (field `kind`):

- `run`: the run's settings (first line): instances, consistency, duration.
- `op`: one client operation. `op` is `write`, `read`, `final` (the read after the run, on a
  fresh connection) or `probe` (a read sent straight to one instance after a fault healed);
  `client`, `session`, `key`, `value` (the integer written, or the one read; None for null),
  `start` and `end` (seconds since the run began), `outcome` (`ok`, or `unknown` for anything
  else: a write that failed may still have committed), `instance` (the upstream that answered,
  when known), `error`.
- `ticker`: one interrupted `ticker` call and its resumption: `session`, `count`, `ticks`
  (every tick received, in order, as [tick number, event id, stream]: `first` or `resume`),
  `result` (`done`, an error text, or None when it never ended), `instances`, `odd` (events
  whose data is not a JSON-RPC object), `unstored` (error answers sent without an event id,
  because storage failed: the client resumed after them).
- `fault`: one fault: `name`, `target`, `start` (injected), `healed`, `end` (the window's end:
  the cluster ready again, or a fixed settle time).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, TextIO


@dataclass
class Op:
    op: str
    client: str
    session: str
    key: str
    value: int | None
    start: float
    end: float
    outcome: str
    instance: str | None = None
    error: str | None = None
    kind: str = "op"


@dataclass
class TickerCall:
    session: str
    count: int
    start: float
    end: float
    ticks: list[list[Any]] = field(default_factory=list)
    result: str | None = None
    instances: list[str] = field(default_factory=list)
    odd: list[str] = field(default_factory=list)
    unstored: list[str] = field(default_factory=list)
    kind: str = "ticker"


@dataclass
class Fault:
    name: str
    target: str
    start: float
    healed: float
    end: float
    kind: str = "fault"


class Recorder:
    """Appends records to a JSON-lines file as they happen, with times on one clock."""

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.path = path
        self.origin = time.monotonic()
        self.file: TextIO = path.open("w")
        self.write({"kind": "run", **settings})

    def now(self) -> float:
        return round(time.monotonic() - self.origin, 4)

    def write(self, record: dict[str, Any]) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def add(self, record: Op | TickerCall | Fault) -> None:
        self.write(asdict(record))

    def close(self) -> None:
        self.file.close()


@dataclass
class History:
    settings: dict[str, Any]
    ops: list[Op]
    tickers: list[TickerCall]
    faults: list[Fault]


def records(path: Path) -> Iterator[dict[str, Any]]:
    with path.open() as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def load(path: Path) -> History:
    history = History(settings={}, ops=[], tickers=[], faults=[])
    for record in records(path):
        kind = record.pop("kind")
        if kind == "run":
            history.settings = record
        elif kind == "op":
            history.ops.append(Op(**record))
        elif kind == "ticker":
            history.tickers.append(TickerCall(**record))
        elif kind == "fault":
            history.faults.append(Fault(**record))
    return history

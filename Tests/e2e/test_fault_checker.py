"""The fault harness's history checker (Tests/faults/checker.py) on small written histories:
each check passes a correct one and fails the history that breaks it."""

from __future__ import annotations

import io
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faults"))
import checker  # noqa: E402
from history import Fault, History, Op, TickerCall  # noqa: E402


def write(client: str, key: str, value: int, start: float, end: float, outcome: str = "ok") -> Op:
    return Op("write", client, "s", key, value, start, end, outcome, "127.0.0.1:1")


def read(client: str, key: str, value: int | None, start: float, end: float, op: str = "read") -> Op:
    return Op(op, client, "s", key, value, start, end, "ok", "127.0.0.1:2")


def good_ops() -> list[Op]:
    return [
        write("c0", "c0/0", 1, 0.0, 0.1), read("c0", "c0/0", 1, 0.2, 0.3), read("c1", "c0/0", 1, 0.4, 0.5),
        write("c0", "c0/0", 2, 1.0, 1.1), read("c0", "c0/0", 2, 1.2, 1.3),
        write("c0", "c0/0", 3, 2.0, 2.1, "error"),  # unknown outcome: c0 moves to c0/1
        write("c0", "c0/1", 1, 3.0, 3.1), read("c1", "c0/1", 1, 3.2, 3.3),
        read("probe", "c0/1", 1, 4.0, 4.1, "probe"),
        read("final", "c0/0", 3, 9.0, 9.1, "final"), read("final", "c0/1", 1, 9.0, 9.1, "final"),
    ]


def ticker(ticks: list[int], result: str | None = "done", count: int = 4) -> TickerCall:
    return TickerCall("t", count, 0.0, 3.0, [[n, f"e{n}", "first" if n < 2 else "resume"] for n in ticks], result, ["a", "b"])


def failures(ops: list[Op], tickers: list[TickerCall] | None = None) -> dict[str, str]:
    history = History({"consistency": "read-your-writes"}, ops, tickers or [ticker([0, 1, 2, 3])], [Fault("kill", "i1", 1.5, 2.5, 3.5)])
    index = checker.Index(history)
    results = [check(index) for check in checker.CHECKS]
    return {r.name: r.violations[0].message for r in results if r.violations}


class CheckerTests(unittest.TestCase):
    def test_a_correct_history_passes(self) -> None:
        self.assertEqual(failures(good_ops()), {})
        out = io.StringIO()
        self.assertEqual(checker.report(History({}, good_ops(), [ticker([0, 1, 2, 3])], []), out), 0)
        self.assertTrue(out.getvalue().rstrip().endswith("7 passed, 0 failed"), out.getvalue())

    def replaced(self, index: int, op: Op) -> dict[str, str]:
        ops = good_ops()
        ops[index] = op
        return failures(ops)

    def test_a_lost_acknowledged_write_fails(self) -> None:
        found = self.replaced(10, read("final", "c0/1", None, 9.0, 9.1, "final"))
        self.assertIn("acknowledged writes survive", found)
        self.assertIn("lost", found["acknowledged writes survive"])

    def test_a_value_never_written_fails(self) -> None:
        self.assertIn("reads return written values", self.replaced(2, read("c1", "c0/0", 7, 0.4, 0.5)))

    def test_a_client_missing_its_own_write_fails(self) -> None:
        self.assertIn("read-your-writes", self.replaced(4, read("c0", "c0/0", 1, 1.2, 1.3)))

    def test_a_read_going_back_fails(self) -> None:
        ops = good_ops() + [read("c1", "c0/0", 2, 1.5, 1.6), read("c1", "c0/0", 1, 1.7, 1.8)]
        self.assertIn("monotonic reads", failures(ops))

    def test_a_stale_read_of_another_clients_write_fails(self) -> None:
        self.assertIn("fresh reads across clients", self.replaced(7, read("c1", "c0/1", None, 3.2, 3.3)))

    def test_a_pre_outage_value_after_a_fault_fails(self) -> None:
        self.assertIn("no pre-outage value after a fault", self.replaced(8, read("probe", "c0/1", None, 4.0, 4.1, "probe")))

    def test_a_tick_twice_or_missing_or_unended_fails(self) -> None:
        for call in (ticker([0, 1, 1, 2, 3]), ticker([0, 2, 3]), ticker([0, 1, 2]), ticker([0, 1], None)):
            self.assertIn("ticker resumes exactly once", failures(good_ops(), [call]), call)
        # A call whose instance died ends with an error after a prefix of its ticks.
        self.assertEqual(failures(good_ops(), [ticker([0, 1], "error -32001: the instance stopped")]), {})


if __name__ == "__main__":
    unittest.main()

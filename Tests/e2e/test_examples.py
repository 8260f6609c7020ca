"""The examples the README and the guides show, run as a reader would run them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

import anyio

from test_server import BINARY, ROOT, Server, connect, free_port, text

BIN = Path(BINARY).parent


def wait_for_port(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited with {process.returncode}: {process.stdout.read() if process.stdout else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listened on {port} within 60 s")


class ExampleTests(unittest.TestCase):
    def test_quickstart_prints_the_state_and_the_replayed_event(self) -> None:
        with tempfile.TemporaryDirectory() as directory:
            run = subprocess.run([BIN / "QuickStart"], cwd=directory, capture_output=True, text=True, timeout=60)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(run.stdout.splitlines(), ['{"theme":"dark"}', "true"])

    def test_greet_server_counts_greetings_and_stops_on_sigterm(self) -> None:
        port = free_port()
        with tempfile.TemporaryDirectory() as directory:
            process = subprocess.Popen([BIN / "GreetServer"], cwd=directory, env={**os.environ, "PORT": str(port)},
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                url = f"http://127.0.0.1:{port}/mcp"
                wait_for_port(port, process)

                async def main() -> None:
                    async with connect(url) as c:
                        for _ in range(2):
                            self.assertEqual(text(await c.session.call_tool("greet", {"name": "Ada"})), "Hello, Ada!")
                        self.assertEqual(c.logs, ["greeting Ada", "greeting Ada"])

                anyio.run(main)
            finally:
                process.send_signal(signal.SIGTERM)
                self.assertEqual(process.wait(20), 0, process.stdout.read() if process.stdout else "")
            self.assertTrue((Path(directory) / "greet.db").exists())

    def test_python_client_example_prints_the_value_it_stored(self) -> None:
        with Server("--storage", "memory:") as server:
            run = subprocess.run([sys.executable, ROOT / "Examples/client.py", server.url], capture_output=True, text=True, timeout=60)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(run.stdout.strip(), "[1,2]")


if __name__ == "__main__":
    unittest.main()

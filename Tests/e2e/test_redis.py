"""End-to-end tests of `mcp-session-server` on Redis (and Redis Cluster): two instances share one
Redis, tell each other what changed through its pub/sub, and serve any session.

Redis URLs come from `scripts/services env` (MCP_REDIS_URL, MCP_REDIS_CLUSTER_URL); without them
these tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import tempfile
import unittest
import uuid

import test_server
from test_server import BINARY, IN_CI, Server

REDIS_URL = os.environ.get("MCP_REDIS_URL")
REDIS_CLUSTER_URL = os.environ.get("MCP_REDIS_CLUSTER_URL")


def require_redis(url: str | None) -> str:
    if url:
        return url
    if IN_CI:
        raise AssertionError("MCP_REDIS_URL is not set under CI=true: run scripts/services start")
    raise unittest.SkipTest("Redis not configured: run `eval \"$(scripts/services env)\"`")


def fresh_prefix(url: str) -> str:
    """The URL with a key prefix of its own, whose keys are deleted when the tests end."""
    prefix = f"e2e_{uuid.uuid4().hex[:12]}"
    ports = [part.rsplit(":", 1)[-1] for part in url.split("://", 1)[1].split("?")[0].split("/")[0].split(",")]

    def drop() -> None:
        for port in ports:
            keys = subprocess.run(["redis-cli", "-p", port, "--scan", "--pattern", f"{prefix}:*"], capture_output=True, text=True).stdout.split()
            for key in keys:
                subprocess.run(["redis-cli", "-c", "-p", port, "DEL", key], capture_output=True)

    atexit.register(drop)
    return f"{url}?prefix={prefix}"


class RedisTwoInstanceTests(test_server.TwoInstanceTests):
    """Two servers over one Redis, each with its front and Redis pub/sub as the bus (`--bus auto`:
    every write's script publishes its change)."""

    def arguments(self) -> list[str]:
        return ["--storage", fresh_prefix(require_redis(REDIS_URL))]


class RedisClusterTwoInstanceTests(test_server.TwoInstanceTests):
    """The same over a Redis Cluster of three primaries."""

    def arguments(self) -> list[str]:
        return ["--storage", fresh_prefix(require_redis(REDIS_CLUSTER_URL))]


class SharedSQLiteWithRedisBusTests(test_server.TwoInstanceTests):
    """Two servers over one SQLite file, with `--bus redis://…`: changes published after their
    writes, batched and numbered."""

    staleness_bound = 2.0

    def arguments(self) -> list[str]:
        self.directory = tempfile.TemporaryDirectory()
        self.addCleanup(self.directory.cleanup)
        return ["--storage", f"sqlite:{self.directory.name}/shared.db", "--bus", require_redis(REDIS_URL)]


class RedisReadYourWritesTests(test_server.ReadYourWritesAcrossInstancesTests):
    """Read-your-writes across two instances over Redis with the default flags."""

    def setUp(self) -> None:
        arguments = ["--storage", fresh_prefix(require_redis(REDIS_URL))]
        self.a = Server(*arguments).start()
        self.b = Server(*arguments).start()



class RedisSettingsTests(unittest.TestCase):
    """A setting Redis refuses stops the server at start-up, naming the host and the refusal;
    a Redis that is not up yet does not (requests answer 503 until it is)."""

    def test_refused_settings_stop_the_server(self) -> None:
        url = require_redis(REDIS_URL)
        host = url.split("://", 1)[1].split("/")[0].split("?")[0]
        for storage, refusal in [(f"redis://{host}/99", "DB index is out of range"), (f"redis://:wrong@{host}", "AUTH")]:
            run = subprocess.run([BINARY, "--port", "0", "--storage", storage], capture_output=True, text=True, timeout=30)
            self.assertNotEqual(run.returncode, 0, storage)
            self.assertIn(f"Redis at {host} refused", run.stderr, storage)
            self.assertIn(refusal, run.stderr, storage)


if __name__ == "__main__":
    unittest.main()

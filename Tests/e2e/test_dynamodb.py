"""End-to-end tests of `mcp-session-server` on DynamoDB (moto's server from `scripts/services`):
two instances share one table and tell each other what changed through a Redis or PostgreSQL bus,
and serve any session.

URLs come from `scripts/services env` (MCP_DYNAMODB_URL, MCP_REDIS_URL, MCP_POSTGRES_URL); without
them these tests skip, except under CI=true, where they fail. moto takes any credentials; the
servers started here get fixed test ones in their environment.
"""

from __future__ import annotations

import os
import unittest
import uuid

import test_server
from test_server import IN_CI, Server

DYNAMODB_URL = os.environ.get("MCP_DYNAMODB_URL")
REDIS_URL = os.environ.get("MCP_REDIS_URL")
POSTGRES_URL = os.environ.get("MCP_POSTGRES_URL")

# moto checks nothing, but the storage signs every request: it needs credentials to sign with.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")


def require(url: str | None, name: str) -> str:
    if url:
        return url
    if IN_CI:
        raise AssertionError(f"{name} is not set under CI=true: run scripts/services start")
    raise unittest.SkipTest(f"{name} not configured: run `eval \"$(scripts/services env)\"`")


def fresh_table() -> str:
    """A table of its own on the moto server (created by the first instance that starts)."""
    endpoint = require(DYNAMODB_URL, "MCP_DYNAMODB_URL")
    return f"dynamodb://e2e-{uuid.uuid4().hex[:12]}?region=us-east-1&endpoint={endpoint}"


class DynamoDBWithRedisBusTwoInstanceTests(test_server.TwoInstanceTests):
    """Two servers over one DynamoDB table, each with its front, Redis pub/sub as the bus:
    changes are published after their writes, batched and numbered."""

    staleness_bound = 2.0

    def arguments(self) -> list[str]:
        return ["--storage", fresh_table(), "--bus", require(REDIS_URL, "MCP_REDIS_URL")]


class DynamoDBWithPostgresBusTwoInstanceTests(test_server.TwoInstanceTests):
    """The same with PostgreSQL LISTEN/NOTIFY as the bus."""

    staleness_bound = 2.0

    def arguments(self) -> list[str]:
        return ["--storage", fresh_table(), "--bus", require(POSTGRES_URL, "MCP_POSTGRES_URL")]


class DynamoDBReadYourWritesTests(test_server.ReadYourWritesAcrossInstancesTests):
    """Read-your-writes across two instances over DynamoDB with a Redis bus. Fewer pairs than over
    PostgreSQL: a write on moto costs tens of milliseconds, and the check's deadline is fixed."""

    def test_sequential_client_reads_its_writes_on_the_other_instance(self) -> None:
        self.check(clients=1, pairs=150)

    def test_16_concurrent_clients_read_their_writes_on_the_other_instance(self) -> None:
        self.check(clients=16, pairs=10)

    def setUp(self) -> None:
        arguments = ["--storage", fresh_table(), "--bus", require(REDIS_URL, "MCP_REDIS_URL")]
        self.a = Server(*arguments).start()
        self.b = Server(*arguments).start()


class DynamoDBStartupTests(unittest.TestCase):
    def test_the_startup_line_says_the_table_is_created_and_the_front_ages_fast_without_a_bus(self) -> None:
        with Server("--storage", fresh_table()) as server:
            async def main() -> None:
                async with test_server.connect(server.url) as connection:
                    await connection.session.call_tool("state_set", {"key": "k", "value": 1})
                    self.assertEqual(test_server.text(await connection.session.call_tool("state_get", {"key": "k"})), "1")

            test_server.anyio.run(main)
            output = server.output()
            self.assertIn("creates the table if missing", output)
            self.assertIn("front maxAge 1 s", output)
            self.assertIn("bus none", output)

    def test_create_false_on_a_missing_table_says_so(self) -> None:
        with Server("--storage", fresh_table() + "&create=false") as server:
            self.assertIn("the table must exist", server.output())


if __name__ == "__main__":
    unittest.main()

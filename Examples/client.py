"""A client for the demo server: `swift run mcp-session-server`, then `python3 Examples/client.py`.
Needs the Python MCP SDK: `pip install 'mcp>=2.3'`."""

import asyncio
import sys

from mcp import Client


async def main(url: str) -> None:
    async with Client(url, mode="legacy") as client:
        await client.call_tool("state_set", {"key": "k", "value": [1, 2]})
        result = await client.call_tool("state_get", {"key": "k"})
        print(result.content[0].text)  # [1,2]


asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080/mcp"))

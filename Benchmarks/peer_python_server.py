"""The peer of the server load benchmark: the Python MCP SDK's own server (MCPServer over
Streamable HTTP, stateful, sessions in memory, no event store, so not resumable) with the same
`state_set` / `state_get` tools, state in a dict per session.

    python3 Benchmarks/peer_python_server.py PORT
"""

import json
import sys

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("peer")
states: dict[int, dict] = {}


@server.tool()
def state_set(key: str, value: object, ctx: Context) -> str:
    states.setdefault(id(ctx.session), {})[key] = value
    return "ok"


@server.tool()
def state_get(key: str, ctx: Context) -> str:
    return json.dumps(states.get(id(ctx.session), {}).get(key))


if __name__ == "__main__":
    server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]))

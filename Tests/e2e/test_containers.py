"""End-to-end tests of the container cluster (docker/compose*.yaml): three instances behind nginx,
driven through nginx's published port with the Python `mcp` client, and an instance container
restarted with a new address under it.

They need a running cluster and skip without one:

    scripts/cluster test --containers [--storage postgres|redis|dynamodb]   # starts, tests, stops

or, against a cluster already started (`scripts/cluster start --containers` prints the endpoint):

    MCP_CLUSTER_URL=http://127.0.0.1:8100/mcp MCP_CLUSTER_PROJECT=mcp-postgres \\
        .venv/bin/python -m unittest discover -s Tests/e2e -t Tests/e2e -p test_containers.py -v

MCP_CLUSTER_PROJECT is the compose project (mcp-postgres, mcp-redis, mcp-dynamodb), whose
containers the tests find by their compose labels; MCP_CLUSTER_ENGINE is `podman` (default) or
`docker`. nginx names the instance that answered in the X-MCP-Upstream header.
"""

from __future__ import annotations

import json
import os
import subprocess
import unittest

from test_server import INIT, check_ticker_resumes, check_tools, raw_post, tool_call, wait_until

URL = os.environ.get("MCP_CLUSTER_URL")
PROJECT = os.environ.get("MCP_CLUSTER_PROJECT", "mcp-postgres")
ENGINE = os.environ.get("MCP_CLUSTER_ENGINE", "podman")
INSTANCES = ["mcp-1", "mcp-2", "mcp-3"]


def engine(*args: str, check: bool = True) -> str:
    run = subprocess.run([ENGINE, *args], capture_output=True, text=True, timeout=120)
    if check and run.returncode != 0:
        raise AssertionError(f"`{ENGINE} {' '.join(args)}` failed ({run.returncode}): {run.stderr.strip()}")
    return run.stdout.strip()


def container(service: str) -> str:
    ids = engine("ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}",
                 "--filter", f"label=com.docker.compose.service={service}").split()
    if not ids:
        raise AssertionError(f"no container of service {service} in compose project {PROJECT}")
    return ids[0]


def network_and_address(container_id: str) -> tuple[str, str]:
    networks = json.loads(engine("inspect", container_id))[0]["NetworkSettings"]["Networks"]
    name, settings = next(iter(networks.items()))
    return name, settings["IPAddress"]


def instance_addresses() -> dict[str, str]:
    """`ip:port` -> service, as nginx's X-MCP-Upstream names them."""
    return {f"{network_and_address(container(s))[1]}:8080": s for s in INSTANCES}


def upstream(response) -> str:  # noqa: ANN001 (httpx2.Response)
    """The instance that answered: the last address nginx tried."""
    header = response.headers.get("x-mcp-upstream")
    assert header, f"no X-MCP-Upstream header: is {URL} the compose cluster's nginx?"
    return header.split(",")[-1].strip()


def new_session() -> str:
    created = raw_post(URL, INIT, accept="application/json")
    assert created.status_code == 200, (created.status_code, created.text)
    return created.headers["mcp-session-id"]


def call(session_id: str, name: str, arguments: dict):  # noqa: ANN201
    """A tools/call answered as JSON; the response, checked for success."""
    response = raw_post(URL, tool_call(name, arguments), mcp_session_id=session_id, accept="application/json")
    assert response.status_code == 200, (response.status_code, response.text, response.headers)
    body = response.json()
    assert "result" in body, body
    return response


def result_text(response) -> str:  # noqa: ANN001
    return response.json()["result"]["content"][0]["text"]


@unittest.skipUnless(URL, "MCP_CLUSTER_URL is not set: `scripts/cluster test --containers` runs these")
class ContainerClusterTests(unittest.TestCase):
    def test_every_instance_is_healthy_and_ready(self) -> None:
        for service in INSTANCES:
            cid = container(service)
            engine("exec", cid, "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/health")
            # Ready is a moment's answer: an instance the previous test restarted may still be
            # connecting its bus, and a read that moto (one request at a time) answers late is
            # a 503 too. What is checked is that every instance gets there.
            def ready() -> bool:
                return subprocess.run([ENGINE, "exec", cid, "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/ready"],
                                      capture_output=True).returncode == 0
            self.assertTrue(wait_until(ready, 30), f"{service} not ready in 30 s:\n{engine('logs', '--tail', '30', cid, check=False)}")
            # The compose health check (GET /ready) as the engine runs it.
            if ENGINE == "podman":
                engine("healthcheck", "run", cid)

    def test_initialize_list_and_call_tools_through_nginx(self) -> None:
        check_tools(self, URL)

    def test_state_set_on_one_instance_is_read_on_the_next(self) -> None:
        addresses = instance_addresses()
        sid = new_session()
        answered: list[tuple[str, str]] = []
        for i in range(30):
            written = call(sid, "state_set", {"key": "n", "value": i})
            read = call(sid, "state_get", {"key": "n"})
            self.assertEqual(result_text(read), str(i), f"pair {i}: set on {upstream(written)}, read on {upstream(read)}")
            answered.append((upstream(written), upstream(read)))
        seen = {address for pair in answered for address in pair}
        self.assertLessEqual(seen, set(addresses), f"answers from addresses that are not instances: {seen - set(addresses)}")
        # No sticky sessions: 60 requests of one session reach every instance, and some reads are
        # answered by another instance than the write before them.
        self.assertEqual(seen, set(addresses), f"60 requests reached only {sorted(addresses[a] for a in seen)}")
        self.assertTrue(any(w != r for w, r in answered), "every read was answered by the instance that wrote")

    def test_interrupted_ticker_resumes_with_every_tick_once(self) -> None:
        # The resume goes wherever nginx sends it: three runs make another instance likely.
        for _ in range(3):
            check_ticker_resumes(self, URL, URL, count=10, after=3)

    def test_a_restarted_instance_with_a_new_address_is_reached_again(self) -> None:
        cid = container("mcp-1")
        network, old = network_and_address(cid)
        info = json.loads(engine("inspect", cid))[0]
        sid = new_session()
        call(sid, "state_set", {"key": "k", "value": "before"})
        placeholder = f"{PROJECT}-placeholder-{os.getpid()}"
        try:
            # Stopped at once (no grace: SIGKILL); `stop` rather than `kill` so the restart
            # policy does not start it again before the placeholder is in place.
            engine("stop", "-t", "0", cid)
            # Two instances serve every request meanwhile.
            for _ in range(6):
                self.assertEqual(result_text(call(sid, "state_get", {"key": "k"})), '"before"')
            # A container that takes the old address, so the instance comes back on another.
            engine("run", "-d", "--rm", "--name", placeholder, "--network", network, "--entrypoint", "sleep",
                   info["Image"], "300")
            engine("start", cid)
            new = network_and_address(cid)[1]
            self.assertNotEqual(new, old, "the restarted instance kept its address: the test proves nothing")
            ready = wait_until(lambda: subprocess.run([ENGINE, "exec", cid, "curl", "-fsS", "-o", "/dev/null",
                                                       "http://127.0.0.1:8080/ready"], capture_output=True).returncode == 0, 60)
            self.assertTrue(ready, f"mcp-1 not ready 60 s after its restart:\n{engine('logs', '--tail', '30', cid, check=False)}")
            reached: list[str] = []

            def reaches_new() -> bool:
                response = call(sid, "state_get", {"key": "k"})
                self.assertEqual(result_text(response), '"before"')
                reached.append(upstream(response))
                return reached[-1] == f"{new}:8080"

            self.assertTrue(wait_until(reaches_new, 20, interval=0.05),
                            f"nginx never sent a request to mcp-1 at {new} after its restart (it was {old}); answered by {sorted(set(reached))}")
        finally:
            engine("rm", "-f", "-v", placeholder, check=False)  # -v: its anonymous /data volume
            engine("start", cid, check=False)


if __name__ == "__main__":
    unittest.main()

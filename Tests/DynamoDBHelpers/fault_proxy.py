#!/usr/bin/env python3
"""A fault injector in front of a real DynamoDB-compatible server, for the throttling test.

    fault_proxy.py --upstream http://127.0.0.1:63900 --faults throttle,500,throttle

Listens on 127.0.0.1 on a free port, which it writes to --port-file once it listens. Each POST takes the next
fault from the list and answers it without forwarding: `throttle` is a 400 ThrottlingException,
`500` an InternalServerError, `conflict` a TransactionCanceledException of one TransactionConflict.
Once the list is used up, every request is forwarded to the upstream server unchanged (the SigV4
signature covers the Host header, which is forwarded as sent). GET /stats answers
{"faulted": N, "forwarded": M}.

Also serves the container credentials endpoint for the credentials test: GET /credentials answers
{"AccessKeyId", "SecretAccessKey", "Token", "Expiration"} with an expiration --expires-in seconds
from now, if the Authorization header equals --token (when given), and counts the calls in stats.
"""
import argparse
import datetime
import json
import os
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = {
    "throttle": (400, {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "Rate of requests exceeds the allowed throughput."}),
    "500": (500, {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": "Internal server error"}),
    "conflict": (400, {
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "message": "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]",
        "CancellationReasons": [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}],
    }),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", default="http://127.0.0.1:63900")
    parser.add_argument("--faults", default="")
    parser.add_argument("--token", default=None)
    parser.add_argument("--expires-in", type=int, default=3600)
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args()
    pending = [f for f in args.faults.split(",") if f]
    lock = threading.Lock()
    stats = {"faulted": 0, "forwarded": 0, "credentials": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def answer(self, status, body, headers=()):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers:
                self.send_header(name, value)
            if not any(name.lower() == "content-type" for name, _ in headers):
                self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/stats":
                with lock:
                    return self.answer(200, dict(stats))
            if self.path == "/credentials":
                if args.token is not None and self.headers.get("Authorization") != args.token:
                    return self.answer(401, {"message": "bad token"})
                with lock:
                    stats["credentials"] += 1
                    n = stats["credentials"]
                expiration = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=args.expires_in)
                return self.answer(200, {
                    "AccessKeyId": f"ASIAEXAMPLE{n}", "SecretAccessKey": "secret", "Token": f"token-{n}",
                    "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
                }, [("Content-Type", "application/json")])
            self.answer(404, {"message": "unknown path"})

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                fault = pending.pop(0) if pending else None
                stats["faulted" if fault else "forwarded"] += 1
            if fault:
                status, payload = FAULTS[fault]
                return self.answer(status, payload)
            request = urllib.request.Request(args.upstream + self.path, data=body, method="POST")
            for name, value in self.headers.items():
                if name.lower() not in ("content-length", "connection", "accept-encoding"):
                    request.add_header(name, value)
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status, data, headers = response.status, response.read(), response.getheaders()
            except urllib.error.HTTPError as error:
                status, data, headers = error.code, error.read(), error.headers.items()
            kept = [(n, v) for n, v in headers if n.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date")]
            self.answer(status, data, kept)

    # Never outlive the test process that started it (an orphan would hold its output pipes open).
    parent = os.getppid()

    def watch_parent():
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(args.port_file + ".tmp", "w") as out:
        out.write(str(server.server_address[1]))
    os.rename(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()

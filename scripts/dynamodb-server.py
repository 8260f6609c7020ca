#!/usr/bin/env python3
"""moto's server (PyPI moto[server]) with one request executed at a time, for scripts/services.

moto applies a TransactWriteItems by snapshotting the whole table and restoring the snapshot when
the transaction is cancelled; with requests on several threads, that restore undoes the writes
other threads made meanwhile (a lost update moto makes, not its client). Real DynamoDB has no such
race. So requests are still read and answered on moto's threads, but run through moto one at a
time.

    dynamodb-server.py -H 127.0.0.1 -p 63900
"""
import argparse
import os
import signal
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=63900)
    args = parser.parse_args()
    # At once, like a crash: moto keeps nothing to flush, and threads held by keep-alive
    # connections would otherwise keep it answering after a stop.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialized(environ, start_response):
        with lock:
            # The whole answer is produced under the lock: moto's are never streamed.
            return list(app(environ, start_response))

    run_simple(args.host, args.port, serialized, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The boto3 side of the DynamoDB comparison in scripts/bench: the same requests the Swift backend
sends for each operation (the same expressions, conditions and items), through boto3 against the
same moto server, at 1 and 16 callers (threads, each with its own client); then botocore's own
cost per session read, without the network: the whole client pipeline (validation,
serialization, SigV4, hooks, parsing) with the HTTP send replaced by the answer the Swift side
measured its cost on.

    boto3_bench.py ENDPOINT SECONDS WORKDIR    # after DynamoDBLoad wrote WORKDIR/dynamodb-*.json

Prints one JSON line per figure.
"""
import json
import os
import sys
import threading
import time
from unittest import mock

import boto3
import botocore.awsrequest
import botocore.config
import botocore.endpoint

endpoint, seconds, workdir = sys.argv[1], float(sys.argv[2]), sys.argv[3]
setup = json.load(open(os.path.join(workdir, "dynamodb-setup.json")))
SESSIONS, EVENTS, KEEP = setup["sessions_table"], setup["events_table"], setup["keep"]


def client():
    return boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing",
        config=botocore.config.Config(max_pool_connections=32, retries={"mode": "standard", "max_attempts": 10}))


def now_micros():
    return int(time.time() * 1_000_000)


def get_session(db, session_id):
    request = {"TableName": SESSIONS, "KeyConditionExpression": "pk = :id AND sk >= :s", "ConsistentRead": True,
               "ExpressionAttributeValues": {":id": {"S": session_id}, ":s": {"S": "s"}}}
    items = []
    while True:
        page = db.query(**request)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def set_state(db, session_id, key="counter", value="42"):
    state_sk = "t#" + key
    entry = len(key.encode()) + len(value.encode())
    while True:
        answer = db.batch_get_item(RequestItems={SESSIONS: {
            "Keys": [{"pk": {"S": session_id}, "sk": {"S": "s"}}, {"pk": {"S": session_id}, "sk": {"S": state_sk}}],
            "ConsistentRead": True, "ProjectionExpression": "sk, v, c, b, n"}})
        items = answer["Responses"][SESSIONS]
        session = next(i for i in items if i["sk"]["S"] == "s")
        old = next((int(i["n"]["N"]) for i in items if i["sk"]["S"] == state_sk), 0)
        version, total = int(session["v"]["N"]), int(session["b"]["N"]) - old + entry
        assert total <= 8 << 20
        now = now_micros()
        try:
            db.transact_write_items(TransactItems=[
                {"Update": {"TableName": SESSIONS, "Key": {"pk": {"S": session_id}, "sk": {"S": "s"}},
                            "UpdateExpression": "SET v = :next, b = :bytes, a = :now, #ttl = :ttl",
                            "ConditionExpression": "v = :version AND c = :created", "ExpressionAttributeNames": {"#ttl": "ttl"},
                            "ExpressionAttributeValues": {":next": {"N": str(version + 1)}, ":bytes": {"N": str(total)}, ":now": {"N": str(now)},
                                                          ":ttl": {"N": str(now // 1_000_000 + 3600)}, ":version": {"N": str(version)},
                                                          ":created": session["c"]}}},
                {"Put": {"TableName": SESSIONS, "Item": {"pk": {"S": session_id}, "sk": {"S": state_sk}, "j": {"S": value}, "n": {"N": str(entry)}}}},
            ])
            return version + 1
        except db.exceptions.TransactionCanceledException:
            continue


def append_event(db, session_id):
    now = now_micros()
    answer = db.update_item(
        TableName=EVENTS, Key={"pk": {"S": session_id}, "sk": {"S": "s"}},
        UpdateExpression="SET e = e + :one, a = :now, #ttl = :ttl, f = if_not_exists(f, :one)", ConditionExpression="attribute_exists(pk)",
        ReturnValues="ALL_NEW", ExpressionAttributeNames={"#ttl": "ttl"},
        ExpressionAttributeValues={":one": {"N": "1"}, ":now": {"N": str(now)}, ":ttl": {"N": str(now // 1_000_000 + 3600)}})
    number, first = int(answer["Attributes"]["e"]["N"]), int(answer["Attributes"]["f"]["N"])
    data = '{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"tick 1","level":"info"}}'
    try:
        db.transact_write_items(TransactItems=[
            {"ConditionCheck": {"TableName": EVENTS, "Key": {"pk": {"S": session_id}, "sk": {"S": "s"}}, "ConditionExpression": "f <= :id",
                                "ExpressionAttributeValues": {":id": {"N": str(number)}}}},
            {"Put": {"TableName": EVENTS, "Item": {"pk": {"S": session_id}, "sk": {"S": "e#%020d" % number}, "x": {"S": "GET\u0001%020d" % number},
                                                    "t": {"N": str(now)}, "ttl": {"N": str(now // 1_000_000 + 3600)}, "d": {"S": data}}}},
        ])
    except db.exceptions.TransactionCanceledException:
        pass
    below = number - KEEP + 1
    if below > first:
        try:
            previous = int(db.update_item(
                TableName=EVENTS, Key={"pk": {"S": session_id}, "sk": {"S": "s"}}, UpdateExpression="SET f = :first",
                ConditionExpression="attribute_exists(pk) AND f < :first", ReturnValues="UPDATED_OLD",
                ExpressionAttributeValues={":first": {"N": str(below)}})["Attributes"]["f"]["N"])
        except db.exceptions.ConditionalCheckFailedException:
            return number
        keys = db.query(TableName=EVENTS, KeyConditionExpression="pk = :id AND sk BETWEEN :from AND :to", ConsistentRead=True,
                        ProjectionExpression="pk, sk", ExpressionAttributeValues={
                            ":id": {"S": session_id}, ":from": {"S": "e#%020d" % previous}, ":to": {"S": "e#%020d" % (below - 1)}})["Items"]
        if keys:
            db.batch_write_item(RequestItems={EVENTS: [{"DeleteRequest": {"Key": key}} for key in keys]})
    return number


OPERATIONS = [("get-session", get_session, 0), ("set-state", set_state, 0), ("append-event", append_event, 1)]


def load(operation, column, callers):
    clients = [client() for _ in range(callers)]
    counts = [0] * callers
    deadline = time.monotonic() + seconds

    def run(index):
        db, session_id = clients[index], setup["sessions"][index][column]
        while time.monotonic() < deadline:
            operation(db, session_id)
            counts[index] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - started)


def client_cost(iterations=3000):
    answer = open(os.path.join(workdir, "dynamodb-answer.json"), "rb").read()

    class Raw:
        def stream(self, **_):
            yield answer

    def send(self, request):
        return botocore.awsrequest.AWSResponse(request.url, 200, {"Content-Type": "application/x-amz-json-1.0"}, Raw())

    db = client()
    request = {"TableName": "mcp-sessions", "KeyConditionExpression": "pk = :id AND sk >= :s", "ConsistentRead": True,
               "ExpressionAttributeValues": {":id": {"S": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"}, ":s": {"S": "s"}}}
    with mock.patch.object(botocore.endpoint.Endpoint, "_send", send):
        for _ in range(200):
            db.query(**request)
        started = time.perf_counter()
        for _ in range(iterations):
            db.query(**request)
        return (time.perf_counter() - started) / iterations * 1e6


for name, operation, column in OPERATIONS:
    for callers in (1, 16):
        print(json.dumps({"name": f"boto3 {name} c{callers}", "value": load(operation, column, callers), "unit": "ops/s"}), flush=True)
print(json.dumps({"name": "botocore client cost per session read", "value": client_cost(), "unit": "us"}), flush=True)

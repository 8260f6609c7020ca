#!/usr/bin/env python3
"""Pairs DynamoDBLoad's figures with boto3_bench.py's, as scripts/bench's extra.jsonl records:
throughput against boto3 at the same callers (ratio: ours / boto3, higher is better), and the
client's cost per session read against botocore's (ratio: ours / botocore, lower is better).

    compare.py OURS.jsonl BOTO3.jsonl
"""
import json
import sys

ours = {r["name"]: r for r in map(json.loads, open(sys.argv[1]))}
theirs = {r["name"]: r for r in map(json.loads, open(sys.argv[2]))}
for name, record in ours.items():
    if name.startswith("DynamoDB client cost"):
        peer = theirs["botocore client cost per session read"]
        label = "botocore, the same read without the network (target: at most 0.2x)"
    else:
        peer = theirs[name.replace("DynamoDB ", "boto3 ", 1)]
        label = "boto3, the same requests to the same moto server" + (" (target: at least 2x)" if name.endswith("c16") else " (target: at least 1x)")
    print(json.dumps({
        "name": name, "value": round(record["value"], 2), "unit": record["unit"], "peer": label,
        "peer_value": round(peer["value"], 2), "ratio": round(record["value"] / peer["value"], 3),
    }))

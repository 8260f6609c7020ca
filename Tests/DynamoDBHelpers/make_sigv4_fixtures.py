#!/usr/bin/env python3
"""Writes sigv4-botocore.json: DynamoDB requests signed by botocore's SigV4Auth at fixed times,
which the Swift signer must reproduce byte for byte (SigV4Tests). Run it again after changing a
case:

    .venv/bin/python Tests/DynamoDBHelpers/make_sigv4_fixtures.py   # needs botocore (pip install boto3)
"""
import datetime
import json
import os
from unittest import mock

import botocore
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

CASES = [
    # (url, region, operation, body, access key, secret, token, time)
    ("https://dynamodb.us-east-1.amazonaws.com/", "us-east-1", "GetItem",
     {"TableName": "mcp-sessions", "Key": {"pk": {"S": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"}, "sk": {"S": "s"}}, "ConsistentRead": True},
     "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None, (2015, 8, 30, 12, 36, 0)),
    ("https://dynamodb.eu-west-1.amazonaws.com/", "eu-west-1", "TransactWriteItems",
     {"TransactItems": [{"Update": {"TableName": "t", "Key": {"pk": {"S": "id"}, "sk": {"S": "s"}}, "UpdateExpression": "SET v = :n",
                                     "ExpressionAttributeValues": {":n": {"N": "2"}}}}]},
     "ASIAEXAMPLE", "secret/with+chars=", "FwoGZXIvYXdzEJr//////////wEaDO+token=", (2026, 12, 3, 13, 5, 9)),
    ("http://127.0.0.1:63900/", "us-east-1", "Query",
     {"TableName": "mcp", "KeyConditionExpression": "pk = :id", "ExpressionAttributeValues": {":id": {"S": "Grüße, 世界 🎉 \u0001"}}},
     "testing", "testing", None, (2024, 2, 29, 23, 59, 59)),
    ("http://localhost:8000/", "ap-southeast-2", "CreateTable", {"TableName": "x" * 255, "BillingMode": "PAY_PER_REQUEST"},
     "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "token with  spaces", (2000, 1, 1, 0, 0, 0)),
    ("https://dynamodb.us-gov-west-1.amazonaws.com:443/", "us-gov-west-1", "DescribeTable", {},
     "AKID", "s", None, (2030, 6, 15, 6, 7, 8)),
]


def main():
    fixtures = []
    for url, region, operation, body, key, secret, token, when in CASES:
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        request = AWSRequest(method="POST", url=url, data=payload, headers={
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"DynamoDB_20120810.{operation}"})
        fixed = datetime.datetime(*when)
        with mock.patch("botocore.auth.get_current_datetime", return_value=fixed):
            signer = SigV4Auth(Credentials(key, secret, token), "dynamodb", region)
            signer.add_auth(request)
            authorization = request.headers["Authorization"]
            del request.headers["Authorization"]  # the stages as they were before the header was added
            canonical = signer.canonical_request(request)
            string_to_sign = signer.string_to_sign(request, canonical)
        fixtures.append({
            "url": url, "region": region, "target": f"DynamoDB_20120810.{operation}", "body": payload.decode(),
            "accessKeyID": key, "secretAccessKey": secret, "sessionToken": token, "amzDate": request.headers["X-Amz-Date"],
            "canonicalRequest": canonical, "stringToSign": string_to_sign, "authorization": authorization,
        })
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sigv4-botocore.json")
    with open(path, "w", encoding="utf-8") as out:
        json.dump({"botocore": botocore.__version__, "cases": fixtures}, out, indent=1, ensure_ascii=False)
        out.write("\n")
    print(f"wrote {len(fixtures)} cases to {path} (botocore {botocore.__version__})")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Test equipment: an S3 client (boto3) that trusts only the island roots.

    s3-client ENDPOINT CA_FILE KEYS_FILE BUCKET ACTION [KEY [BODY]]

ACTION is list, put, get, delete, versions (the version IDs of KEY), delete-version (KEY and
VERSION_ID in the place of BODY) or force-delete (DELETE with MinIO's x-minio-force-delete: true).
KEYS_FILE holds two lines, access key and secret key, so no secret is on a command line. Prints the
result as JSON; an S3 error prints its code (for example AccessDenied) and exits 3.
"""

import json
import sys

import boto3
import botocore.config
import botocore.exceptions


def main(argv):
    endpoint, ca_file, keys_file, bucket, action = argv[:5]
    rest = argv[5:]
    with open(keys_file, encoding="utf-8") as handle:
        access_key, secret_key = handle.read().split()[:2]
    client = boto3.client(
        "s3",
        endpoint_url=f"https://{endpoint}",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        verify=ca_file,
        config=botocore.config.Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    try:
        if action == "list":
            reply = client.list_objects_v2(Bucket=bucket)
            result = sorted(item["Key"] for item in reply.get("Contents", []))
        elif action == "put":
            client.put_object(Bucket=bucket, Key=rest[0], Body=rest[1].encode())
            result = "put"
        elif action == "get":
            result = client.get_object(Bucket=bucket, Key=rest[0])["Body"].read().decode()
        elif action == "delete":
            client.delete_object(Bucket=bucket, Key=rest[0])
            result = "deleted"
        elif action == "versions":
            reply = client.list_object_versions(Bucket=bucket, Prefix=rest[0])
            result = [v["VersionId"] for v in reply.get("Versions", []) if v["Key"] == rest[0]]
        elif action == "delete-version":
            client.delete_object(Bucket=bucket, Key=rest[0], VersionId=rest[1])
            result = "deleted"
        elif action == "force-delete":

            def force(request, **_):
                request.headers["x-minio-force-delete"] = "true"

            client.meta.events.register_first("before-sign.s3.DeleteObject", force)
            client.delete_object(Bucket=bucket, Key=rest[0])
            result = "deleted"
        else:
            sys.exit(f"unknown action {action}")
    except botocore.exceptions.ClientError as exc:
        print(json.dumps({"error": exc.response["Error"]["Code"]}))
        sys.exit(3)
    print(json.dumps({"result": result}))


if __name__ == "__main__":
    main(sys.argv[1:])

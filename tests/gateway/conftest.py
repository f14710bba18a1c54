"""The gateway tests share one real mini cluster (started once per test session)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gateway.cluster import MiniCluster

VHOST_DOMAIN = "s3.shardbox.test"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MiniCluster]:
    mc = MiniCluster(tmp_path_factory.mktemp("gateway-cluster"), domain=VHOST_DOMAIN)
    try:
        mc.start()
    except BaseException:
        mc.stop()
        for name in ("coordinator", "gateway", "node00"):
            print(f"--- {name} log ---\n{mc.log_tail(name)}")
        raise
    try:
        yield mc
    finally:
        mc.stop()


@pytest.fixture
def s3(cluster: MiniCluster):
    return cluster.boto3_client()


@pytest.fixture
def bucket(s3, request: pytest.FixtureRequest) -> str:
    """A fresh bucket per test, emptied and removed afterwards."""
    name = "t-" + request.node.name.lower().replace("_", "-")[:40].strip("-") + f"-{id(request) % 10000}"
    name = "".join(c for c in name if c.isalnum() or c == "-")[:63].rstrip("-")
    s3.create_bucket(Bucket=name)
    yield name
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        for up in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])
        s3.delete_bucket(Bucket=name)
    except Exception as exc:  # cleanup must not mask the test's own result
        print(f"cleanup of {name} failed: {exc}")

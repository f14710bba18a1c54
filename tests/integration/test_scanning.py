"""Malware scanning end to end with a real clamd: `shardbox up --clamd SOCKET`, real S3 clients.

EICAR inside a 100 MiB file is found and the file quarantined (bytes kept for admins only);
the audit names who downloaded it while it was being scanned; a clean file becomes ready;
a worker killed in the middle of a scan still leaves the right status, scanned once.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from gateway.api.passwords import hash_password
from tests.clamd import EICAR, EICAR_FOUND, ClamdProcess, clamd_available
from tests.integration import ops
from tests.integration.cluster import Cluster, start_cluster
from tests.integration.conftest import _database_url
from tests.integration.product.client import Api, request
from tests.util import ControlledClock

MIB = 1 << 20
PRODUCT_PASSWORD = "correct horse battery staple"
LEASE_S = 60.0  # the worker's default lease: a killed worker's scan is taken over after it


@pytest.fixture(scope="module")
def env(
    request: pytest.FixtureRequest, tmp_path_factory
) -> Iterator[tuple[Cluster, ClamdProcess, ControlledClock]]:
    if not clamd_available():
        pytest.fail("clamd is not installed (scripts/setup.sh --test installs clamav-daemon)")
    root = tmp_path_factory.mktemp("scan")
    clamd = ClamdProcess().start()
    clock = ControlledClock(root / "clock")
    data = root / "data"
    data.mkdir()
    try:
        cluster = start_cluster(
            data, database_url=_database_url(request), args=("--clamd", str(clamd.socket)), env=clock.env()
        )
    except Exception:
        clamd.cleanup()
        raise
    try:
        yield cluster, clamd, clock
    finally:
        cluster.stop()
        clamd.cleanup()


# tests/integration/ops.py's wait, with this module's patience (scans and GC rounds are slow).
wait_for = functools.partial(ops.wait_for, timeout=180.0, every=0.2)


def head(s3, bucket: str, key: str) -> dict[str, str]:
    return s3.head_object(Bucket=bucket, Key=key)["ResponseMetadata"]["HTTPHeaders"]


def s3_as(cluster: Cluster, access_key: str, secret_key: str):
    return boto3.client(
        "s3",
        endpoint_url=cluster.endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )


def add_user(cluster: Cluster, name: str) -> tuple[object, str]:
    """A second user of the admin's tenant: (its S3 client, its user id)."""
    out = cluster.admin("user", "add", name, "--tenant", "default").stdout
    lines = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    client = s3_as(cluster, lines["access key"], lines["secret key"])
    return client, run(lambda api: api.get_key(lines["access key"]), cluster).user_id


def run(fn, cluster: Cluster):
    async def go():
        async with cluster.coordinator() as api:
            return await fn(api)

    return asyncio.run(go())


def big_file(path: Path, size: int, eicar_at: int | None) -> str:
    """Random bytes (fresh, so clamd's cache of clean results does not apply), EICAR at an offset."""
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        written = 0
        while written < size:
            piece = bytearray(os.urandom(min(8 * MIB, size - written)))
            if eicar_at is not None and written <= eicar_at < written + len(piece) - len(EICAR):
                piece[eicar_at - written : eicar_at - written + len(EICAR)] = EICAR
            f.write(piece)
            digest.update(piece)
            written += len(piece)
    return digest.hexdigest()


def streamed_sha256(body) -> str:
    digest = hashlib.sha256()
    for piece in body.iter_chunks(MIB):
        digest.update(piece)
    return digest.hexdigest()


def audit(cluster: Cluster, bucket: str, key: str) -> list[dict]:
    return json.loads(cluster.admin("audit", bucket, key, "--json").stdout)["audit"]


def upload(s3, path: Path, bucket: str, key: str) -> None:
    s3.upload_file(
        str(path), bucket, key, Config=TransferConfig(multipart_chunksize=16 * MIB, max_concurrency=4)
    )


def test_a_clean_file_becomes_ready(env):
    cluster, clamd, _clock = env
    # shardbox up found the clamd it was pointed at and says so
    assert cluster.info["scanner"].startswith("clamd ClamAV ")
    assert cluster.info["scanner"].endswith(f" at {clamd.socket}")
    console = (cluster.data_dir.parent / f"{cluster.data_dir.name}-up.log").read_text()
    assert "scanner     : clamd ClamAV" in console
    s3 = cluster.s3()
    s3.create_bucket(Bucket="clean")
    s3.put_object(Bucket="clean", Key="notes.txt", Body=os.urandom(3 * MIB))
    wait_for("the scan", lambda: head(s3, "clean", "notes.txt")["x-shardbox-status"] == "ready")
    headers = head(s3, "clean", "notes.txt")
    assert headers["x-shardbox-scan-result"] == "clean"


def test_eicar_inside_100_mib_is_quarantined_and_the_audit_names_earlier_downloaders(env, tmp_path):
    cluster, clamd, _clock = env
    admin = cluster.s3()
    bob, bob_id = add_user(cluster, "bob")
    admin_id = run(lambda api: api.get_key(cluster.info["access_key"]), cluster).user_id
    admin.create_bucket(Bucket="shared")
    path = tmp_path / "setup.exe"
    digest = big_file(path, 100 * MIB, eicar_at=61 * MIB + 12345)
    clamd.stop()  # the scan waits: people download the file meanwhile (read-after-write)
    upload(admin, path, "shared", "setup.exe")
    assert head(admin, "shared", "setup.exe")["x-shardbox-status"] == "scanning"
    got = bob.get_object(Bucket="shared", Key="setup.exe")
    assert got["ResponseMetadata"]["HTTPHeaders"]["x-shardbox-status"] == "scanning"
    assert streamed_sha256(got["Body"]) == digest
    part = admin.get_object(Bucket="shared", Key="setup.exe", Range="bytes=0-1023")["Body"].read()
    assert len(part) == 1024
    wait_for(
        "both downloads in the audit",
        lambda: (
            {e["actor"] for e in audit(cluster, "shared", "setup.exe") if e["action"] == "object.download"}
            == {bob_id, admin_id}
        ),
    )
    clamd.start()
    wait_for(
        "the quarantine", lambda: head(admin, "shared", "setup.exe")["x-shardbox-status"] == "quarantined"
    )
    headers = head(admin, "shared", "setup.exe")
    assert headers["x-shardbox-scan-result"] == f"infected: {EICAR_FOUND}"
    with pytest.raises(ClientError) as denied:
        bob.get_object(Bucket="shared", Key="setup.exe")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert "quarantined" in denied.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as copy:  # nor copied out of quarantine by a user
        bob.copy_object(Bucket="shared", Key="copy.exe", CopySource={"Bucket": "shared", "Key": "setup.exe"})
    assert copy.value.response["Error"]["Code"] == "AccessDenied"
    # the bytes are kept, for admins
    assert streamed_sha256(admin.get_object(Bucket="shared", Key="setup.exe")["Body"]) == digest
    (quarantine,) = [e for e in audit(cluster, "shared", "setup.exe") if e["action"] == "object.quarantine"]
    assert quarantine["detail"]["result"] == f"infected: {EICAR_FOUND}"
    assert quarantine["detail"]["owner_id"] == admin_id
    named = {(d["actor"], d["client_addr"]) for d in quarantine["detail"]["downloaders"]}
    assert named == {(bob_id, "127.0.0.1"), (admin_id, "127.0.0.1")}
    table = cluster.admin("audit", "shared", "setup.exe").stdout
    assert "2 earlier downloads" in table and bob_id in table


def test_killing_the_worker_mid_scan_still_ends_with_the_right_status(env, tmp_path):
    cluster, _clamd, clock = env
    s3 = cluster.s3()
    s3.create_bucket(Bucket="killed")
    wait_for("an idle outbox", lambda: run(lambda api: api.pipeline_status(), cluster).outbox_pending == 0)
    path = tmp_path / "big.iso"
    size = 300 * MIB
    big_file(path, size, eicar_at=size - MIB)  # found only by a scan that reads to the end
    upload(s3, path, "killed", "big.iso")
    worker_pid = cluster.info["worker"]["pid"]
    wait_for(
        "the worker to start the scan",
        lambda: run(lambda api: api.pipeline_status(), cluster).outbox_claimed,
        timeout=120,
    )
    assert head(s3, "killed", "big.iso")["x-shardbox-status"] == "scanning"
    os.kill(worker_pid, signal.SIGKILL)

    def restarted() -> bool:
        info = json.loads((cluster.data_dir / "up.json").read_text())
        return info["worker"]["pid"] != worker_pid

    wait_for("shardbox up to start another worker", restarted, timeout=60)
    # The dead worker's claim holds until its lease runs out: let it run out now.
    assert head(s3, "killed", "big.iso")["x-shardbox-status"] == "scanning"
    cluster.advance_clock(clock, LEASE_S + 1)
    wait_for(
        "the scan to end",
        lambda: head(s3, "killed", "big.iso")["x-shardbox-status"] == "quarantined",
        timeout=300,
    )
    scans = [e for e in audit(cluster, "killed", "big.iso") if e["action"] == "object.scan"]
    assert [e["detail"]["result"] for e in scans] == [f"infected: {EICAR_FOUND}"]
    assert run(lambda api: api.pipeline_status(), cluster).parked_events == 0


def test_a_product_upload_is_scanned_and_an_infected_one_loses_its_share_links(env):
    """The product API's files go through the same scan: a clean upload becomes ready and its
    link downloads; an infected one is quarantined, its share link revoked in the same step."""
    cluster, _clamd, _clock = env
    name = f"alice-{os.getpid()}"

    async def make(api) -> None:
        await api.create_user("default", name)
        await api.set_password(name, hash_password(PRODUCT_PASSWORD))

    run(make, cluster)
    alice = Api(cluster.endpoint)
    assert alice.login(name, PRODUCT_PASSWORD).status == 200
    drive = f"drive_{alice.get('/api/v1/me').json['user']['id']}"
    chunk = alice.get("/api/v1/info").json["chunk_size"]

    clean = os.urandom(2 * MIB)
    done, _ = alice.upload("/reports/q3.bin", clean, chunk)
    assert (done.status, done.json["file"]["status"]) == (200, "scanning")
    clean_id = done.json["file"]["id"]
    infected = os.urandom(64 * 1024) + EICAR + os.urandom(1024)
    done, _ = alice.upload("/reports/setup.exe", infected, chunk)
    assert (done.status, done.json["file"]["status"]) == (200, "scanning")
    bad_id = done.json["file"]["id"]
    links = {}
    for file_id in (clean_id, bad_id):
        made = alice.post(f"/api/v1/files/{file_id}/share_links", {"permission": "download"})
        assert made.status == 201, made.body
        links[file_id] = made.json["url"]

    def status(file_id: str) -> str:
        return alice.get(f"/api/v1/files/{file_id}").json["entry"]["status"]

    wait_for("the clean file's scan", lambda: status(clean_id) == "ready")
    wait_for("the infected file's quarantine", lambda: status(bad_id) == "quarantined")
    shared = request("GET", links[clean_id], headers={"Accept": "application/json"})
    assert shared.status == 200
    assert request("GET", shared.json["download_url"], redirect=True).body == clean
    assert request("GET", links[bad_id], headers={"Accept": "application/json"}).status == 404
    (quarantine,) = [e for e in audit(cluster, drive, bad_id) if e["action"] == "object.quarantine"]
    assert quarantine["detail"]["links_revoked"] == 1
    assert quarantine["detail"]["result"] == f"infected: {EICAR_FOUND}"

"""An operator's cluster, `shardbox up --nodes 15 --pool cold=14`, end to end.

Storage tiers with a lifecycle clock the test controls: a bucket rule moves an object to
COLD (its shards to the cold pool), GET answers InvalidObjectState, RestoreObject brings it
back for the days asked, GET works, and when the restore expires the object is cold again.
The admin CLI: options where people type them, --json, quotas, usage for billing, GDPR
erasure that leaves shared bytes alone, and draining a node so it can be removed."""

from __future__ import annotations

import calendar
import os
import time
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from gateway.api.passwords import hash_password
from tests.integration.cluster import Cluster, start_cluster
from tests.integration.conftest import _database_url
from tests.integration.ops import Coordinator, admin, admin_json, shards_on, wait_for
from tests.integration.product.client import Api, request
from tests.util import ControlledClock

pytestmark = pytest.mark.slow
DAY = 86400.0
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def clock(tmp_path_factory: pytest.TempPathFactory) -> ControlledClock:
    return ControlledClock(tmp_path_factory.mktemp("clock") / "offset")


@pytest.fixture(scope="module")
def tiered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           clock: ControlledClock) -> Iterator[Cluster]:
    data = tmp_path_factory.mktemp("tiers") / "data"
    data.mkdir()
    c = start_cluster(data, database_url=_database_url(request), nodes=15, pools={"cold": 14},
                      env=clock.env())
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def coordinator(tiered: Cluster) -> Iterator[Coordinator]:
    c = Coordinator(tiered.data_dir, tiered.info["coordinator"]["address"])
    try:
        yield c
    finally:
        c.close()


def pools_holding(c: Cluster, chunk_prefixes: set[str] | None = None) -> dict[str, int]:
    """Shards per pool (of the chunks named, or all)."""
    out: dict[str, int] = {}
    for n in c.info["nodes"]:
        for sid in shards_on(c.data_dir, n):
            if chunk_prefixes is None or sid.rsplit(".", 1)[0] in chunk_prefixes:
                out[n["pool"]] = out.get(n["pool"], 0) + 1
    return out


def invalid_state(call) -> ClientError:
    with pytest.raises(ClientError) as err:
        call()
    assert err.value.response["Error"]["Code"] == "InvalidObjectState"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    return err.value




def _restore_expiry(head: dict) -> float:
    """The expiry-date of x-amz-restore as unix seconds."""
    value = head["Restore"].split('expiry-date="', 1)[1].rstrip('"')
    return calendar.timegm(time.strptime(value, "%a, %d %b %Y %H:%M:%S GMT"))


def test_transition_to_cold_restore_and_restore_expiry(tiered: Cluster, coordinator: Coordinator,
                                                        clock: ControlledClock) -> None:
    s3 = tiered.s3()
    assert {n["pool"] for n in tiered.info["nodes"]} == {"standard", "cold"}
    s3.create_bucket(Bucket="archive")
    body = os.urandom(1 << 20)
    s3.put_object(Bucket="archive", Key="report.bin", Body=body)
    s3.put_object(Bucket="archive", Key="note.txt", Body=b"small things are never tiered")
    before = {sid.rsplit(".", 1)[0] for n in tiered.info["nodes"]
              for sid in shards_on(tiered.data_dir, n)}
    assert len(before) == 1 and pools_holding(tiered) == {"standard": 14}   # the small one is inline
    rules = [{"ID": "to-cold", "Filter": {"Prefix": ""}, "Status": "Enabled",
              "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}]
    s3.put_bucket_lifecycle_configuration(Bucket="archive", LifecycleConfiguration={"Rules": rules})
    assert s3.get_bucket_lifecycle_configuration(Bucket="archive")["Rules"] == rules

    # The cluster's clock moves (the worker's periodic pass would find the same; the test runs
    # one pass itself rather than wait for it).
    tiered.advance_clock(clock, 29 * DAY)
    coordinator.lifecycle()
    assert s3.head_object(Bucket="archive", Key="report.bin").get("StorageClass", "STANDARD") == "STANDARD"
    tiered.advance_clock(clock, 2 * DAY)
    coordinator.lifecycle()
    head = s3.head_object(Bucket="archive", Key="report.bin")
    assert head["StorageClass"] == "GLACIER" and "Restore" not in head
    assert s3.head_object(Bucket="archive", Key="note.txt").get("StorageClass", "STANDARD") == "STANDARD"
    invalid_state(lambda: s3.get_object(Bucket="archive", Key="report.bin"))
    invalid_state(lambda: s3.copy_object(Bucket="archive", Key="copy", CopySource="archive/report.bin"))
    assert s3.get_object(Bucket="archive", Key="note.txt")["Body"].read() == b"small things are never tiered"
    wait_for("the worker to move the shards to the cold pool",
             lambda: pools_holding(tiered, before) == {"cold": 14}, timeout=120, every=1)

    restore = s3.restore_object(Bucket="archive", Key="report.bin", RestoreRequest={"Days": 2})
    assert restore["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert s3.head_object(Bucket="archive", Key="report.bin")["Restore"] == 'ongoing-request="true"'
    invalid_state(lambda: s3.get_object(Bucket="archive", Key="report.bin"))
    with pytest.raises(ClientError) as again:
        s3.restore_object(Bucket="archive", Key="report.bin", RestoreRequest={"Days": 2})
    assert again.value.response["Error"]["Code"] == "RestoreAlreadyInProgress"
    wait_for("the worker to bring the shards back to STANDARD nodes",
             lambda: pools_holding(tiered, before) == {"standard": 14}, timeout=120, every=1)
    tiered.advance_clock(clock, DAY)
    t1 = time.time() + clock.offset
    coordinator.lifecycle()
    head = s3.head_object(Bucket="archive", Key="report.bin")
    assert head["Restore"].startswith('ongoing-request="false", expiry-date="')
    expiry = _restore_expiry(head)
    assert t1 + 2 * DAY - 5 <= expiry <= time.time() + clock.offset + 2 * DAY + 1
    assert head["StorageClass"] == "GLACIER"
    assert s3.get_object(Bucket="archive", Key="report.bin")["Body"].read() == body

    tiered.advance_clock(clock, 2 * DAY - 600)                            # not yet
    coordinator.lifecycle()
    assert s3.get_object(Bucket="archive", Key="report.bin")["Body"].read() == body
    tiered.advance_clock(clock, 900)                                      # past the expiry
    coordinator.lifecycle()
    invalid_state(lambda: s3.get_object(Bucket="archive", Key="report.bin"))
    assert "Restore" not in s3.head_object(Bucket="archive", Key="report.bin")
    wait_for("the worker to send the shards back to the cold pool",
             lambda: pools_holding(tiered, before) == {"cold": 14}, timeout=120, every=1)


def test_an_object_written_to_a_cold_class_lands_in_the_cold_pool(tiered: Cluster) -> None:
    s3 = tiered.s3()
    s3.create_bucket(Bucket="deep")
    s3.put_object(Bucket="deep", Key="tape", Body=os.urandom(600 << 10), StorageClass="DEEP_ARCHIVE")
    listed = s3.list_objects_v2(Bucket="deep")["Contents"]
    assert [(o["Key"], o["StorageClass"]) for o in listed] == [("tape", "DEEP_ARCHIVE")]
    invalid_state(lambda: s3.get_object(Bucket="deep", Key="tape"))

    def on_cold_only() -> bool:
        cold = {sid.rsplit(".", 1)[0] for n in tiered.info["nodes"] if n["pool"] == "cold"
                for sid in shards_on(tiered.data_dir, n)}
        standard = {sid.rsplit(".", 1)[0] for n in tiered.info["nodes"] if n["pool"] == "standard"
                    for sid in shards_on(tiered.data_dir, n)}
        return bool(cold - standard)                                # its chunk is on cold nodes only

    wait_for("the worker to move the new chunk to the cold pool", on_cold_only, timeout=120, every=1)
    with pytest.raises(ClientError) as err:
        s3.put_bucket_lifecycle_configuration(Bucket="deep", LifecycleConfiguration={"Rules": [
            {"ID": "bad", "Filter": {"Prefix": ""}, "Status": "Enabled",
             "Transitions": [{"Days": 5, "StorageClass": "GLACIER"}], "Expiration": {"Days": 3}}]})
    assert err.value.response["Error"]["Code"] == "InvalidArgument"
    s3.delete_bucket_lifecycle(Bucket="deep")
    with pytest.raises(ClientError) as err:
        s3.get_bucket_lifecycle_configuration(Bucket="deep")
    assert err.value.response["Error"]["Code"] == "NoSuchLifecycleConfiguration"


def test_admin_cli_options_json_quota_usage_and_erase(tiered: Cluster, coordinator: Coordinator) -> None:
    data = tiered.data_dir
    # Options after the command words, as people type them.
    done = admin(data, "user", "add", "bob", "--tenant", "acme")
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    code, carol = admin_json(data, "user", "add", "carol", "--tenant", "acme")
    assert code == 0 and carol["user"]["tenant_name"] == "acme"
    code, users = admin_json(data, "user", "list")
    assert {u["name"] for u in users} >= {"admin", "bob", "carol"}
    code, quota = admin_json(data, "quota", "set", "acme", "2G")
    assert code == 0 and quota["quota_bytes"] == 2 << 30
    bad = admin(data, "quota", "set", "acme", "lots")
    assert bad.returncode == 2 and "not a size" in bad.stderr
    missing = admin(data, "quota", "set", "nobody", "1G")
    assert missing.returncode == 1 and "NoSuchTenant" in missing.stderr

    def client(key: str, secret: str):
        return boto3.client("s3", endpoint_url=tiered.endpoint, region_name="us-east-1",
                            aws_access_key_id=key, aws_secret_access_key=secret,
                            config=BotoConfig(s3={"addressing_style": "path"}))

    bob = client(lines["access key"], lines["secret key"])
    carol_s3 = client(carol["access_key"], carol["secret_key"])
    shared = os.urandom(300 << 10)
    bob.create_bucket(Bucket="bobs")
    bob.put_object(Bucket="bobs", Key="private/diary.txt", Body=shared)
    bob.put_object(Bucket="bobs", Key="only-bob", Body=os.urandom(200 << 10))
    carol_s3.create_bucket(Bucket="carols")
    carol_s3.put_object(Bucket="carols", Key="same-bytes", Body=shared)        # deduplicated with bob's
    for _ in range(3):
        assert bob.get_object(Bucket="bobs", Key="only-bob")["Body"].read()

    def acme_usage() -> dict | None:
        rows = admin_json(data, "usage", "--tenant", "acme")[1]
        return rows[0] if rows and rows[0]["egress_bytes"] >= 3 * (200 << 10) else None

    usage = wait_for("the gateway's usage counts", acme_usage, timeout=60)
    assert usage["objects"] == 3 and usage["logical_bytes"] == 2 * (300 << 10) + (200 << 10)
    assert usage["logical_bytes_by_class"] == {"STANDARD": 2 * (300 << 10) + (200 << 10)}
    assert usage["unique_bytes"] == (300 << 10) + (200 << 10)          # dedup: the shared bytes once
    assert usage["api_requests"] >= 8 and usage["ingress_bytes"] >= 2 * (300 << 10) + (200 << 10)
    human = admin(data, "usage", "--month", usage["month"])
    assert human.returncode == 0 and "acme" in human.stdout and "EGRESS" in human.stdout

    # bob's drive in the product: a file in a folder, a share link, a grant to carol
    for name in ("bob", "carol"):
        coordinator.run(coordinator.client.set_password(name, hash_password(PASSWORD)))
    bob_web, carol_web = Api(tiered.endpoint), Api(tiered.endpoint)
    assert bob_web.login("bob", PASSWORD).status == 200 and carol_web.login("carol", PASSWORD).status == 200
    done, _ = bob_web.upload("/letters/to-carol.txt", b"dear carol", 8 << 20)
    assert done.status == 200, done.body
    file_id = done.json["file"]["id"]
    link = bob_web.post(f"/api/v1/files/{file_id}/share_links", {"permission": "view"})
    assert link.status == 201
    grant = bob_web.post(f"/api/v1/files/{file_id}/grants", {"user": "carol", "permission": "view"})
    assert grant.status == 201
    assert [e["id"] for e in carol_web.get("/api/v1/shared").json["items"]] == [file_id]

    refused = admin(data, "user", "erase", "bob")
    assert refused.returncode == 1 and "--yes" in refused.stderr
    code, erased = admin_json(data, "user", "erase", "bob", "--yes")
    assert code == 0 and erased["versions"] == 3 and erased["keys"] == 1 and erased["buckets"] == 2
    assert (erased["files"], erased["share_links"], erased["grants"]) == (3, 1, 1)   # root, folder, file
    assert request("GET", link.json["url"], headers={"Accept": "application/json"}).status == 404
    assert carol_web.get("/api/v1/shared").json["items"] == []
    assert bob_web.get("/api/v1/me").status == 401
    assert "bob" not in {u["name"] for u in admin_json(data, "user", "list")[1]}

    def key_refused() -> bool:   # gateways cache keys for up to [gateway] key_cache_s (30 s)
        try:
            bob.list_buckets()
        except ClientError as err:
            return err.response["Error"]["Code"] == "InvalidAccessKeyId"
        return False

    wait_for("bob's key to stop working", key_refused, timeout=60, every=2)
    assert carol_s3.get_object(Bucket="carols", Key="same-bytes")["Body"].read() == shared
    assert "bobs" not in {b["Name"] for b in tiered.s3().list_buckets()["Buckets"]}


def test_a_drained_node_is_emptied_and_removed_with_no_data_at_risk(tiered: Cluster) -> None:
    s3 = tiered.s3()
    s3.create_bucket(Bucket="drain")

    def chunks_by_node() -> dict[str, set[str]]:
        return {n["id"]: {sid.rsplit(".", 1)[0] for sid in shards_on(tiered.data_dir, n)}
                for n in tiered.info["nodes"]}

    before = set().union(*chunks_by_node().values())
    for i in range(4):
        s3.put_object(Bucket="drain", Key=f"k{i}", Body=os.urandom(400 << 10))
    mine = set().union(*chunks_by_node().values()) - before
    assert len(mine) == 4
    holding = chunks_by_node()
    node = next(n for n in tiered.info["nodes"] if n["pool"] == "standard" and holding[n["id"]] & mine)
    refused = admin(tiered.data_dir, "nodes", "remove", node["id"])
    assert refused.returncode == 1 and "drain it first" in refused.stderr
    code, drained = admin_json(tiered.data_dir, "nodes", "drain", node["id"])
    assert code == 0 and drained["state"] == "draining" and drained["queued_shards"] >= 1
    wait_for("the worker to move the drained node's shards",
             lambda: admin_json(tiered.data_dir, "repair", "status")[1]["backlog_shards"] == 0, timeout=120)
    # Nothing referenced is left there (garbage of erased objects waits for GC's grace period),
    # and every chunk still has 14 shards on 14 other nodes.
    after = chunks_by_node()
    assert not after.pop(node["id"]) & mine
    for key in mine:
        assert sum(key in held for held in after.values()) == 14
    code, health = admin_json(tiered.data_dir, "health")
    assert code == 0 and health["chunks_by_surviving_shards"]["under_10"] == 0
    done = admin(tiered.data_dir, "nodes", "remove", node["id"])
    assert done.returncode == 0 and "held no shards" in done.stdout
    for i in range(4):
        assert len(s3.get_object(Bucket="drain", Key=f"k{i}")["Body"].read()) == 400 << 10
    assert admin_json(tiered.data_dir, "health")[0] == 0

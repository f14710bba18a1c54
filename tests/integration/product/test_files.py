"""Uploads, files and folders through the real gateway: the protocol, dedup at init, resume,
quota races, edit conflicts, rename/move, trash, versions, ranged and conditional downloads."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.integration.product.client import Api, chunk_digests, content_hash, init_doc, request
from tests.integration.product.conftest import CHUNK, Product


def _bytes(n: int, seed: int = 0) -> bytes:
    return os.urandom(n) if seed == 0 else hashlib.shake_256(str(seed).encode()).digest(n)


def test_upload_then_download_with_ranges_and_validators(product: Product) -> None:
    _, api = product.user()
    data = _bytes(3 * CHUNK + 12345)
    fin, sent = api.upload("/docs/report.bin", data, CHUNK)
    assert fin.status == 200, fin.body
    f = fin.json["file"]
    assert (f["path"], f["name"], f["size"], f["type"], f["status"]) == (
        "/docs/report.bin", "report.bin", len(data), "file", "ready")
    assert sent == len(data) and f["version"]

    whole = api.get(f"/api/v1/files/{f['id']}/content")
    assert whole.status == 200 and whole.body == data
    assert whole.headers["Content-Disposition"].startswith("attachment")
    etag = whole.headers["ETag"]
    part = api.get(f"/api/v1/files/{f['id']}/content", headers={"Range": "bytes=1048570-2097160"})
    assert part.status == 206 and part.body == data[1048570:2097161]
    assert part.headers["Content-Range"] == f"bytes 1048570-2097160/{len(data)}"
    tail = api.get(f"/api/v1/files/{f['id']}/content", headers={"Range": "bytes=-100"})
    assert tail.status == 206 and tail.body == data[-100:]
    beyond = api.get(f"/api/v1/files/{f['id']}/content", headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status == 416 and beyond.headers["Content-Range"] == f"bytes */{len(data)}"
    same = api.get(f"/api/v1/files/{f['id']}/content", headers={"If-None-Match": etag})
    assert same.status == 304 and same.body == b""

    listing = api.get("/api/v1/files?path=/docs")
    assert listing.status == 200 and [i["name"] for i in listing.json["items"]] == ["report.bin"]
    assert api.get("/api/v1/stat?path=/docs/report.bin").json["entry"]["id"] == f["id"]


def test_empty_file_and_bad_chunks_are_refused_with_nothing_kept(product: Product) -> None:
    _, api = product.user()
    fin, _ = api.upload("/empty.txt", b"", CHUNK)
    assert fin.status == 200 and fin.json["file"]["size"] == 0
    assert api.get(f"/api/v1/files/{fin.json['file']['id']}/content").body == b""

    data = _bytes(CHUNK + 10)
    init = api.post("/api/v1/uploads/init", init_doc("/x.bin", data, CHUNK))
    assert init.status == 201 and init.json["missing"] == [0, 1]
    url0, url1 = init.json["urls"]["0"], init.json["urls"]["1"]
    wrong = request("PUT", url0, _bytes(CHUNK))
    assert (wrong.status, wrong.code) == (400, "BadDigest")
    short = request("PUT", url1, data[CHUNK:CHUNK + 5])
    assert (short.status, short.code) == (400, "InvalidArgument")
    forged = request("PUT", url0.replace("&s=", "&s=A"), data[:CHUNK])
    assert (forged.status, forged.code) == (403, "SignatureDoesNotMatch")
    status = api.get(f"/api/v1/uploads/{init.json['upload_id']}")
    assert status.json["missing"] == [0, 1] and status.json["landed"] == []
    early = api.post("/api/v1/uploads/finalize", {"upload_id": init.json["upload_id"]})
    assert (early.status, early.code, early.json["error"]["missing"]) == (409, "UploadIncomplete", [0, 1])
    assert request("PUT", url0, data[:CHUNK]).status == 200
    again = request("PUT", url0, _bytes(CHUNK))    # chunk 0 has landed: a resend is checked too
    assert (again.status, again.code) == (400, "BadDigest")
    assert api.call("DELETE", f"/api/v1/uploads/{init.json['upload_id']}").status == 204
    assert request("PUT", url0, data[:CHUNK]).status == 404  # aborted: the signed URL leads nowhere

    bad = api.post("/api/v1/uploads/init", {**init_doc("/y.bin", data, CHUNK), "content_hash": "0" * 64})
    assert (bad.status, bad.code) == (400, "InvalidArgument")
    other_size = api.post("/api/v1/uploads/init", {**init_doc("/y.bin", data, CHUNK), "chunk_size": 4096})
    assert other_size.status == 400 and other_size.json["error"]["chunk_size"] == CHUNK


RESUMER = r"""
import json, sys, time, urllib3
session = json.loads(sys.stdin.readline())
data = open(sys.argv[1], "rb").read()
chunk = session["chunk_size"]
pool = urllib3.PoolManager()
for i in session["missing"]:
    r = pool.request("PUT", session["urls"][str(i)], body=data[i * chunk:(i + 1) * chunk])
    assert r.status == 200, r.data
    print(i, flush=True)
    time.sleep(0.05)
"""


def test_an_upload_killed_at_60_percent_resumes_with_the_missing_chunks_only(
        product: Product, tmp_path: Path) -> None:
    _, api = product.user()
    data = _bytes(20 * CHUNK + 777)
    source = tmp_path / "video.bin"
    source.write_bytes(data)
    init = api.post("/api/v1/uploads/init", init_doc("/trip/video.bin", data, CHUNK))
    assert init.status == 201 and len(init.json["missing"]) == 21
    upload_id = init.json["upload_id"]
    client = subprocess.Popen([sys.executable, "-c", RESUMER, str(source)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    client.stdin.write(json.dumps(init.json) + "\n")
    client.stdin.flush()
    landed = []
    deadline = time.monotonic() + 300
    while len(landed) < 13 and time.monotonic() < deadline:  # 13 of 21 chunks: past 60%
        landed = api.get(f"/api/v1/uploads/{upload_id}").json["landed"]
    client.send_signal(signal.SIGKILL)
    client.wait()
    status = api.get(f"/api/v1/uploads/{upload_id}").json
    assert 13 <= len(status["landed"]) < 21
    assert sorted(status["landed"] + status["missing"]) == list(range(21))
    sent = api.send_chunks(status, data, CHUNK)  # the fresh URLs of the status answer
    assert sent == sum(min(CHUNK, len(data) - i * CHUNK) for i in status["missing"])
    assert sent <= 0.4 * len(data) + CHUNK
    fin = api.post("/api/v1/uploads/finalize", {"upload_id": upload_id})
    assert fin.status == 200
    assert api.get(f"/api/v1/files/{fin.json['file']['id']}/content").body == data


def test_a_second_upload_of_the_same_200_mib_sends_no_chunk(product: Product) -> None:
    _, api = product.user()
    data = _bytes(200 << 20)
    digests = chunk_digests(data, CHUNK)
    first = api.post("/api/v1/uploads/init", init_doc("/big/one.iso", data, CHUNK, digests))
    assert first.status == 201 and len(first.json["missing"]) == 200
    missing = first.json["missing"]
    threads = [threading.Thread(target=api.send_chunks, args=(
        {"missing": missing[k::4], "urls": first.json["urls"]}, data, CHUNK)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert api.post("/api/v1/uploads/finalize", {"upload_id": first.json["upload_id"]}).status == 200

    again, sent = api.upload("/big/two.iso", data, CHUNK)
    assert again.status == 200 and sent == 0
    second = api.post("/api/v1/uploads/init", init_doc("/big/three.iso", data, CHUNK, digests))
    assert second.json["missing"] == [] and second.json["urls"] == {}
    api.call("DELETE", f"/api/v1/uploads/{second.json['upload_id']}")
    body = api.get(f"/api/v1/files/{again.json['file']['id']}/content", preload=False)
    assert body.status == 200


def test_twenty_users_uploading_the_same_content_at_once_store_one_copy(product: Product) -> None:
    tenant = f"shared-{os.getpid()}-{time.monotonic_ns()}"
    users = [product.user(tenant)[1] for _ in range(20)]
    data = _bytes(3 * CHUNK + 100_000)  # the last chunk too big to be kept inline in the metadata
    answers: list = [None] * 20
    barrier = threading.Barrier(20)

    def run(i: int) -> None:
        barrier.wait()
        answers[i] = users[i].upload(f"/installer-{i}.exe", data, CHUNK)[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status for a in answers] == [200] * 20
    rows = product.sql(
        "SELECT c.refcount, (SELECT count(*) FROM chunk_shards s WHERE s.chunk_key = c.chunk_key) "
        "FROM chunks c JOIN tenants t ON c.scope = t.tenant_id WHERE t.name = :t", t=tenant)
    assert sorted(r[0] for r in rows) == [20] * 4          # 4 distinct chunks, each referenced 20 times
    assert [r[1] for r in rows] == [14] * 4                # and stored once: 14 shards each
    for i in (0, 19):
        file_id = answers[i].json["file"]["id"]
        assert users[i].get(f"/api/v1/files/{file_id}/content").body == data


def test_two_clients_racing_for_the_last_quota_cannot_both_succeed(product: Product) -> None:
    for round_ in range(3):
        _, api = product.user(quota_bytes=100 * CHUNK)
        other = Api(product.base, api.token)
        fake = [hashlib.sha256(f"{round_}-{i}".encode()).hexdigest() for i in range(80)]
        doc = {"size": 80 * CHUNK, "chunk_size": CHUNK, "chunks": fake, "content_hash": content_hash(fake)}
        answers: list = [None, None]
        barrier = threading.Barrier(2)

        def run(i: int, client: Api, doc=doc, answers=answers, barrier=barrier) -> None:
            barrier.wait()
            answers[i] = client.post("/api/v1/uploads/init", {**doc, "path": f"/phone-{i}.mp4"})

        threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate((api, other))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(a.status for a in answers) == [201, 413], [a.body for a in answers]
        loser = next(a for a in answers if a.status == 413)
        assert loser.code == "QuotaExceeded"
        usage = api.get("/api/v1/usage").json["user"]
        assert (usage["quota_bytes"], usage["reserved_bytes"], usage["used_bytes"]) == (
            100 * CHUNK, 80 * CHUNK, 0)


def test_two_users_racing_for_the_last_of_their_tenants_quota_cannot_both_succeed(product: Product) -> None:
    tenant = f"small-{os.getpid()}-{time.monotonic_ns()}"
    _, first = product.user(tenant, tenant_quota=100 * CHUNK)
    _, second = product.user(tenant)
    fake = [hashlib.sha256(f"t-{i}".encode()).hexdigest() for i in range(60)]
    doc = {"size": 60 * CHUNK, "chunk_size": CHUNK, "chunks": fake, "content_hash": content_hash(fake)}
    barrier = threading.Barrier(2)
    answers: list = [None, None]

    def run(i: int, client: Api) -> None:
        barrier.wait()
        answers[i] = client.post("/api/v1/uploads/init", {**doc, "path": "/laptop.iso"})

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate((first, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status for a in answers) == [201, 413]
    tenant_usage = first.get("/api/v1/usage").json["tenant"]
    assert (tenant_usage["quota_bytes"], tenant_usage["reserved_bytes"]) == (100 * CHUNK, 60 * CHUNK)


def test_an_edit_conflict_keeps_both_versions_and_tells_the_stale_client(product: Product) -> None:
    _, api = product.user()
    fin, _ = api.upload("/notes.txt", b"version one", CHUNK)
    v1 = fin.json["file"]["version"]
    alice = api.post("/api/v1/uploads/init", init_doc("/notes.txt", b"alice's edit", CHUNK),
                     headers={"If-Match": v1})
    bob = api.post("/api/v1/uploads/init", init_doc("/notes.txt", b"bob's edit!!", CHUNK),
                   headers={"If-Match": v1})
    for s, body in ((alice, b"alice's edit"), (bob, b"bob's edit!!")):
        api.send_chunks(s.json, body, CHUNK)
    won = api.post("/api/v1/uploads/finalize", {"upload_id": alice.json["upload_id"]},
                   headers={"If-Match": v1})
    assert won.status == 200
    v2 = won.json["file"]["version"]
    lost = api.post("/api/v1/uploads/finalize", {"upload_id": bob.json["upload_id"]},
                    headers={"If-Match": v1})
    assert (lost.status, lost.code) == (409, "EditConflict")
    assert lost.json["error"]["current"]["version"] == v2
    kept = api.post("/api/v1/uploads/finalize", {"upload_id": bob.json["upload_id"]})  # save anyway
    assert kept.status == 200
    v3 = kept.json["file"]["version"]
    versions = api.get(f"/api/v1/files/{fin.json['file']['id']}/versions").json["versions"]
    assert [(v["version"], v["current"]) for v in versions] == [(v3, True), (v2, False), (v1, False)]
    file_id = fin.json["file"]["id"]
    old = api.get(f"/api/v1/files/{file_id}/content?version={v2}")
    assert old.body == b"alice's edit"
    restored = api.post(f"/api/v1/files/{file_id}/versions/{v1}/restore")
    assert restored.status == 200 and restored.json["entry"]["version"] not in (v1, v2, v3)
    assert api.get(f"/api/v1/files/{file_id}/content").body == b"version one"


def test_folders_rename_move_trash_and_restore(product: Product) -> None:
    _, api = product.user()
    assert api.post("/api/v1/folders", {"path": "/a/b"}).status == 201
    assert api.post("/api/v1/folders", {"path": "/a/b"}).code == "AlreadyExists"
    fin, _ = api.upload("/a/b/photo.jpg", b"\xff\xd8 jpeg", CHUNK)
    f = fin.json["file"]
    assert f["content_type"] == "image/jpeg"
    for i in range(5):
        api.upload(f"/a/n{i}.txt", b"x", CHUNK)
    page = api.get("/api/v1/files?path=/a&limit=2").json
    assert [i["name"] for i in page["items"]] == ["b", "n0.txt"]
    rest = api.get(f"/api/v1/files?path=/a&limit=10&cursor={page['next']}").json
    assert [i["name"] for i in rest["items"]] == ["n1.txt", "n2.txt", "n3.txt", "n4.txt"]
    assert rest["next"] is None

    moved = api.call("PATCH", f"/api/v1/files/{f['id']}", {"path": "/c/renamed.jpg"})
    assert moved.status == 200
    m = moved.json["entry"]
    assert (m["id"], m["path"], m["version"]) == (f["id"], "/c/renamed.jpg", f["version"])
    assert api.get(f"/api/v1/files/{f['id']}/content").body == b"\xff\xd8 jpeg"
    folder_b = api.get("/api/v1/stat?path=/a/b").json["entry"]["id"]
    assert api.call("PATCH", f"/api/v1/files/{folder_b}", {"name": "bee"}).json["entry"]["path"] == "/a/bee"
    a_id = api.get("/api/v1/stat?path=/a").json["entry"]["id"]
    assert api.call("PATCH", f"/api/v1/files/{a_id}", {"parent": folder_b}).code == "InvalidArgument"

    assert api.call("DELETE", f"/api/v1/files/{a_id}").status == 204
    assert api.get("/api/v1/stat?path=/a/n0.txt").status == 404
    trash = api.get("/api/v1/trash").json["items"]
    assert [t["name"] for t in trash] == ["a"] and trash[0]["trashed_at"]
    api.post("/api/v1/folders", {"path": "/a"})          # a new /a takes the name meanwhile
    back = api.post(f"/api/v1/files/{a_id}/restore")
    assert back.status == 200 and back.json["entry"]["path"] == "/a (restored)"
    assert api.get("/api/v1/stat?path=/a (restored)/n3.txt").status == 200


def test_another_tenant_cannot_learn_whether_content_exists(product: Product) -> None:
    _, alice = product.user()
    _, mallory = product.user()
    secret = _bytes(2 * CHUNK + 5)
    assert alice.upload("/salary.xlsx", secret, CHUNK)[0].status == 200

    def init(api: Api, data: bytes) -> tuple[float, dict]:
        started = time.perf_counter()
        a = api.post("/api/v1/uploads/init", init_doc("/probe.bin", data, CHUNK))
        took = time.perf_counter() - started
        assert a.status == 201
        api.call("DELETE", f"/api/v1/uploads/{a.json['upload_id']}")
        return took, a.json

    def shape(a: dict) -> dict:
        """The answer with the values that may differ per session (ids, URLs, times) as types."""
        return {k: (v if k in ("missing", "landed", "size", "chunk_size", "path") else type(v).__name__)
                for k, v in a.items() if k != "urls"}

    # Interleaved pairs, in alternating order, so the load of a busy machine hits both sides alike;
    # compare the median of the paired differences with the median duration.
    diffs, durations = [], []
    for i in range(31):
        probe = _bytes(2 * CHUNK + 5)
        if i % 2:
            t_unknown, a_unknown = init(mallory, probe)
            t_known, a_known = init(mallory, secret)
        else:
            t_known, a_known = init(mallory, secret)
            t_unknown, a_unknown = init(mallory, probe)
        assert shape(a_known) == shape(a_unknown) and a_known["missing"] == [0, 1, 2]
        assert len(a_known["urls"]) == 3
        diffs.append(t_known - t_unknown)
        durations += [t_known, t_unknown]
    diffs.sort()
    durations.sort()
    typical = durations[len(durations) // 2]
    # The same work either way: no difference beyond the noise of a busy machine.
    assert abs(diffs[15]) < max(0.01, 0.2 * typical), (diffs[15], typical)
    mine = alice.post("/api/v1/uploads/init", init_doc("/again.xlsx", secret, CHUNK))
    assert mine.json["missing"] == []   # within the tenant, dedup at init does find it


def test_drives_are_not_buckets_for_s3_clients(product: Product) -> None:
    name, api = product.user()
    api.upload("/secret.txt", b"drive content", CHUNK)
    user_id = api.get("/api/v1/me").json["user"]["id"]
    key = product.cluster.admin_call(lambda c: c.create_key(name))
    s3 = product.cluster.boto3_client(key)
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == []
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket=f"drive_{user_id}")
    assert exc.value.response["Error"]["Code"] == "NoSuchBucket"


def test_unfinished_uploads_expire_and_the_trash_keeps_files_for_its_retention(product: Product) -> None:
    _, login = product.user()
    api = Api(product.base, login.post("/api/v1/tokens", {"name": "clock test"}).json["token"])
    data = _bytes(2 * CHUNK)
    init = api.post("/api/v1/uploads/init", init_doc("/slow.bin", data, CHUNK))
    api.send_chunks({**init.json, "missing": [0]}, data, CHUNK)
    fin, _ = api.upload("/old.txt", b"kept a while", CHUNK)
    api.call("DELETE", f"/api/v1/files/{fin.json['file']['id']}")
    assert api.get("/api/v1/usage").json["user"]["used_bytes"] == 12
    try:
        product.clock.advance(86400 + 60)                  # the next day: the session has expired
        gone = api.get(f"/api/v1/uploads/{init.json['upload_id']}")
        assert (gone.status, gone.code) == (404, "NotFound")
        assert request("PUT", init.json["urls"]["1"], data[CHUNK:]).status == 404
        assert api.get("/api/v1/usage").json["user"]["reserved_bytes"] == 2 * CHUNK  # until the expiry job
        bucket = product.sql("SELECT bucket FROM upload_sessions WHERE upload_id = :u",
                             u=init.json["upload_id"])[0][0]
        tenant = product.sql("SELECT tenant_id FROM upload_sessions WHERE upload_id = :u",
                             u=init.json["upload_id"])[0][0]
        product.cluster.admin_call(lambda c: c.abort_upload(tenant, bucket, init.json["upload_id"]))
        assert api.get("/api/v1/usage").json["user"]["reserved_bytes"] == 0

        product.clock.advance(30 * 86400)                  # past the trash's retention
        assert api.post(f"/api/v1/files/{fin.json['file']['id']}/restore").status == 404
        assert api.get("/api/v1/trash").json["items"] == []
        assert product.cluster.admin_call(lambda c: c.purge_trash(1000)) >= 1
        assert api.get("/api/v1/usage").json["user"]["used_bytes"] == 0
    finally:
        product.clock.advance(-product.clock.offset)

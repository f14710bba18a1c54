"""Share links and grants through the real gateway: every status of a link, revocation one by
one, passwords, max_downloads under concurrency, view vs download, signed URLs re-checked,
grants taking effect on the next request, hot links served from one fetch per chunk."""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from tests.integration.product.client import Api, init_doc, request
from tests.integration.product.conftest import CHUNK, Product

JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html,application/xhtml+xml"}


def _shared_file(product: Product, data: bytes, name: str = "/shared/clip.webm") -> tuple[Api, str]:
    _, api = product.user()
    fin, _ = api.upload(name, data, CHUNK)
    assert fin.status == 200, fin.body
    return api, fin.json["file"]["id"]


def _link(api: Api, file_id: str, **options) -> dict:
    made = api.post(f"/api/v1/files/{file_id}/share_links", {"permission": "download", **options})
    assert made.status == 201, made.body
    return made.json


def _public(url: str, headers: dict | None = None, **kw):
    return request("GET", url, headers={**JSON, **(headers or {})}, **kw)


def _set_status(product: Product, file_id: str, status: str) -> None:
    product.sql("UPDATE object_versions SET status = :s WHERE key = :k AND is_latest", s=status, k=file_id)


def test_every_status_of_a_share_link(product: Product) -> None:
    data = os.urandom(CHUNK + 4096)
    api, file_id = _shared_file(product, data)
    base = product.base

    unknown = _public(f"{base}/share/{'x' * 32}")
    assert (unknown.status, unknown.code) == (404, "NotFound")
    link = _link(api, file_id)
    assert link["url"].startswith(f"{base}/share/") and len(urlsplit(link["url"]).path) == len("/share/") + 32
    ok = _public(link["url"])
    assert ok.status == 200
    assert {k: ok.json[k] for k in ("type", "name", "size", "permission", "status")} == {
        "type": "file", "name": "clip.webm", "size": len(data), "permission": "download", "status": "ready"}

    # Revoked answers exactly as unknown does: same status, same body.
    assert api.call("DELETE", f"/api/v1/share_links/{link['id']}").status == 204
    revoked = _public(link["url"])
    assert (revoked.status, revoked.body) == (404, unknown.body)
    assert request("GET", link["url"], headers=HTML).status == 404   # the page says so, with the status

    soon = (datetime.now(UTC) + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    expiring = _link(api, file_id, expires_at=soon)
    deadline = time.monotonic() + 60
    answer = _public(expiring["url"])
    while answer.status == 200 and time.monotonic() < deadline:
        answer = _public(expiring["url"])
    assert (answer.status, answer.code) == (410, "Gone")

    guarded = _link(api, file_id, password="open sesame")
    missing = _public(guarded["url"])
    assert (missing.status, missing.code, missing.json["error"]["password_required"]) == (
        401, "PasswordRequired", True)
    wrong = _public(guarded["url"], {"X-Share-Password": "open barley"})
    assert (wrong.status, wrong.code) == (401, "WrongPassword")
    right = _public(guarded["url"], {"X-Share-Password": "open sesame"})
    assert right.status == 200 and "download_url" in right.json
    dl = request("GET", guarded["url"] + "/download", headers={"X-Share-Password": "open sesame"})
    assert dl.status == 302 and request("GET", dl.headers["Location"]).body == data
    assert request("GET", guarded["url"] + "/download").status == 401
    guessed = _link(api, file_id, password="hunter2")
    tries = [_public(guessed["url"], {"X-Share-Password": f"guess {i}"}).status for i in range(5)]
    throttled = _public(guessed["url"], {"X-Share-Password": "hunter2"})   # even the right one, now
    assert tries == [401] * 5 and (throttled.status, throttled.code) == (429, "TooManyRequests")
    form = request("POST", guarded["url"], body=b"password=open+sesame",
                   headers={"Content-Type": "application/x-www-form-urlencoded", **HTML})
    assert form.status == 303
    cookie = form.headers["Set-Cookie"].split(";")[0]
    assert _public(guarded["url"], {"Cookie": cookie}).status == 200

    fresh = _link(api, file_id)
    _set_status(product, file_id, "scanning")
    scanning = _public(fresh["url"])
    assert (scanning.status, scanning.code) == (425, "TooEarly")
    assert request("GET", fresh["url"], headers=HTML).status == 425
    _set_status(product, file_id, "quarantined")
    assert _public(fresh["url"]).status == 404
    _set_status(product, file_id, "ready")

    once = _link(api, file_id, max_downloads=1)
    first = request("GET", once["url"] + "/download", redirect=True)
    assert first.status == 200 and first.body == data
    deadline = time.monotonic() + 30
    while _public(once["url"]).status == 200 and time.monotonic() < deadline:
        time.sleep(0.05)  # counted once its last byte is out
    used = _public(once["url"])
    assert (used.status, used.code) == (410, "Gone")
    listed = {item["id"]: item for item in api.get("/api/v1/share_links").json["links"]}
    assert listed[once["id"]]["status"] == "exhausted" and listed[once["id"]]["downloads"] == 1
    assert link["id"] not in listed                        # revoked ones leave the list
    assert all("url" not in item and "token" not in item for item in listed.values())


def test_public_answers_name_no_owner_time_or_internal_id(product: Product) -> None:
    data = b"quarterly numbers"
    api, file_id = _shared_file(product, data, "/q3.csv")
    owner = api.get("/api/v1/me").json["user"]
    link = _link(api, file_id, permission="view")
    doc = _public(link["url"])
    dl = request("GET", link["url"] + "/download")
    served = request("GET", dl.headers["Location"])
    everything = doc.body.decode() + json.dumps(dict(doc.headers)) + dl.headers["Location"] \
        + json.dumps(dict(served.headers))
    for secret in (owner["name"], owner["id"], file_id, link["id"], owner["tenant"]):
        assert secret not in everything
    assert "Last-Modified" not in served.headers and "created_at" not in doc.json
    assert set(doc.json) <= {"type", "name", "path", "size", "content_type", "status", "permission",
                             "preview_url", "download_url", "expires_at", "items"}


def test_revoking_one_of_a_thousand_links_leaves_the_others_working(product: Product) -> None:
    api, file_id = _shared_file(product, b"installer bytes", "/setup.exe")
    with ThreadPoolExecutor(8) as pool:
        links = list(pool.map(lambda _: _link(api, file_id), range(1000)))
    victim = links[517]
    assert api.call("DELETE", f"/api/v1/share_links/{victim['id']}").status == 204
    assert _public(victim["url"]).status == 404
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda link: _public(link["url"]).status, links))
    assert statuses.count(200) == 999 and statuses[517] == 404
    assert len([x for x in api.get("/api/v1/share_links").json["links"] if x["file"]["id"] == file_id]) == 999


def test_max_downloads_holds_under_twenty_concurrent_downloads(product: Product) -> None:
    data = os.urandom(2 * CHUNK + 1234)
    api, file_id = _shared_file(product, data, "/popular.bin")
    link = _link(api, file_id, max_downloads=5)
    barrier = threading.Barrier(20)

    def fetch(_: int):
        barrier.wait()
        return request("GET", link["url"] + "/download", redirect=True)

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(fetch, range(20)))
    full = [a for a in answers if a.status == 200]
    assert len(full) == 5 and all(a.body == data for a in full)
    assert sorted({a.status for a in answers if a.status != 200}) == [410]
    # A download counts once its last byte is out: the count lands right after the body.
    deadline = time.monotonic() + 30
    while _public(link["url"]).status == 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _public(link["url"]).status == 410
    row = next(x for x in api.get("/api/v1/share_links").json["links"] if x["id"] == link["id"])
    assert (row["downloads"], row["status"]) == (5, "exhausted")
    audited = product.sql("SELECT client_addr FROM audit WHERE action = 'share.download' AND target = :l",
                          l=link["id"])
    assert [r[0] for r in audited] == ["127.0.0.1"] * 5


def test_a_view_link_never_becomes_an_attachment(product: Product) -> None:
    data = b"<html><script>alert(1)</script></html>"
    api, file_id = _shared_file(product, data, "/page.html")
    link = _link(api, file_id, permission="view")
    doc = _public(link["url"]).json
    assert "preview_url" in doc and "download_url" not in doc
    moved = request("GET", link["url"] + "/download")
    assert moved.status == 302
    url = moved.headers["Location"]
    shown = request("GET", url)
    assert shown.status == 200 and shown.body == data
    assert shown.headers["Content-Disposition"].startswith("inline")
    assert shown.headers["Content-Type"].startswith("text/plain")        # never run as HTML here
    assert "sandbox" in shown.headers["Content-Security-Policy"]
    for tampered in (url + "&d=attachment", url + "&response-content-disposition=attachment",
                     url.replace("?", "?disposition=attachment&")):
        a = request("GET", tampered)
        assert a.status == 403 or a.headers["Content-Disposition"].startswith("inline")
    download = _link(api, file_id)
    got = request("GET", download["url"] + "/download", redirect=True)
    assert got.headers["Content-Disposition"].startswith("attachment")


def test_a_revoked_or_quarantined_links_earlier_signed_url_stops_working(product: Product) -> None:
    data = os.urandom(CHUNK // 2)
    api, file_id = _shared_file(product, data, "/leak.bin")
    link = _link(api, file_id)
    url = request("GET", link["url"] + "/download").headers["Location"]
    first = request("GET", url)
    assert first.status == 200 and first.body == data
    etag = first.headers["ETag"]
    assert request("GET", url, headers={"If-None-Match": etag}).status == 304
    ranged = request("GET", url, headers={"Range": "bytes=10-19"})
    assert ranged.status == 206 and ranged.body == data[10:20]
    api.call("DELETE", f"/api/v1/share_links/{link['id']}")
    assert request("GET", url).status == 404
    assert request("GET", url, headers={"If-None-Match": etag}).status == 404

    other = _link(api, file_id)
    url2 = request("GET", other["url"] + "/download").headers["Location"]
    assert request("GET", url2).status == 200
    # The scan quarantines it (the coordinator call the scan worker makes): the other link is
    # revoked in the same transaction, and its signed URL stops working too.
    (version_id,), = product.sql("SELECT version_id FROM object_versions WHERE key = :k AND is_latest",
                                 k=file_id)
    assert product.cluster.admin_call(lambda c: c.record_scan(
        version_id, "quarantined", "infected: X", "test", ["ready"])) is True
    assert request("GET", url2).status == 404 and _public(other["url"]).status == 404
    listed = {x["id"] for x in api.get("/api/v1/share_links").json["links"]}
    assert {link["id"], other["id"]} & listed == set()             # revoked links are not listed


def test_a_revoked_grant_takes_effect_on_the_next_request(product: Product) -> None:
    tenant = f"team-{os.getpid()}-{time.monotonic_ns()}"
    alice_name, alice = product.user(tenant)
    bob_name, bob = product.user(tenant)
    _, outsider = product.user()
    fin, _ = alice.upload("/project/plan.txt", b"the plan", CHUNK)
    plan = fin.json["file"]["id"]
    folder = alice.get("/api/v1/stat?path=/project").json["entry"]["id"]
    assert bob.get(f"/api/v1/files/{plan}").status == 404          # not shared: as if it did not exist

    grant = alice.post(f"/api/v1/files/{folder}/grants", {"user": bob_name, "permission": "view"})
    assert grant.status == 201
    stranger = outsider.get("/api/v1/me").json["user"]["name"]      # a user of another tenant
    denied = alice.post(f"/api/v1/files/{folder}/grants", {"user": stranger, "permission": "view"})
    assert (denied.status, denied.code) == (404, "NotFound")
    shared = bob.get("/api/v1/shared").json["items"]
    assert [(s["name"], s["permission"], s["owner"]) for s in shared] == [("project", "view", alice_name)]
    listing = bob.get(f"/api/v1/files?parent={folder}").json
    assert [i["name"] for i in listing["items"]] == ["plan.txt"]
    assert bob.get(f"/api/v1/files/{plan}/content").body == b"the plan"        # inherited from the folder
    assert bob.call("PATCH", f"/api/v1/files/{plan}", {"name": "mine.txt"}).status == 403
    into = {"parent": folder, "name": "bob.txt", **{k: v for k, v in init_doc("", b"bob", CHUNK).items()
                                                      if k != "path"}}
    refused = bob.post("/api/v1/uploads/init", into)
    assert (refused.status, refused.code) == (403, "AccessDenied")

    alice.post(f"/api/v1/files/{folder}/grants", {"user": bob_name, "permission": "edit"})
    new = bob.post("/api/v1/uploads/init", into)
    assert new.status == 201
    bob.send_chunks(new.json, b"bob", CHUNK)
    assert bob.post("/api/v1/uploads/finalize", {"upload_id": new.json["upload_id"]}).status == 200
    assert alice.get("/api/v1/stat?path=/project/bob.txt").status == 200    # in alice's drive

    alice.call("DELETE", f"/api/v1/files/{folder}/grants/{grant.json['grant']['id']}")
    assert bob.get(f"/api/v1/files/{plan}/content").status == 404
    assert bob.get(f"/api/v1/files?parent={folder}").status == 404
    assert bob.get("/api/v1/shared").json["items"] == []


def test_a_hot_link_is_read_from_the_nodes_about_once(product: Product) -> None:
    data = os.urandom(4 * CHUNK)
    api, file_id = _shared_file(product, data, "/viral.mp4")
    link = _link(api, file_id)
    log = product.cluster.root / "gateway.log"
    before = log.stat().st_size

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: request("GET", link["url"] + "/download", redirect=True),
                                range(40)))
    assert all(a.status == 200 and a.body == data for a in answers)
    blob: list[dict] = []
    deadline = time.monotonic() + 60
    while len(blob) < 40 and time.monotonic() < deadline:  # each line is written once its answer is out
        with open(log, "rb") as f:
            f.seek(before)
            lines = [json.loads(line) for line in f if b'"api.request"' in line]
        blob = [x for x in lines if x.get("route") == "/api/v1/blob/{ref}" and x["status"] == 200]
    assert len(blob) == 40
    node_bytes = sum(x.get("node_bytes_in", 0) for x in blob)
    # 40 downloads of 4 MiB: one fetch per chunk (collapsed, then cached), a few spares at most.
    assert node_bytes < 1.5 * len(data), node_bytes


def test_a_folder_link_lists_its_contents_and_serves_files_below_it(product: Product) -> None:
    _, api = product.user()
    api.upload("/album/a.jpg", b"first photo", CHUNK)
    api.upload("/album/trip/b.jpg", b"second photo", CHUNK)
    api.upload("/private.txt", b"not shared", CHUNK)
    album = api.get("/api/v1/stat?path=/album").json["entry"]["id"]
    link = _link(api, album, permission="view")
    top = _public(link["url"]).json
    assert top["type"] == "folder" and [(i["name"], i["type"]) for i in top["items"]] == [
        ("trip", "folder"), ("a.jpg", "file")]
    photo = next(i for i in top["items"] if i["name"] == "a.jpg")
    assert request("GET", photo["preview_url"]).body == b"first photo"
    inner = _public(link["url"] + "?path=trip").json
    assert [i["path"] for i in inner["items"]] == ["trip/b.jpg"]
    got = request("GET", link["url"] + "/download?path=trip/b.jpg", redirect=True)
    assert got.body == b"second photo" and got.headers["Content-Disposition"].startswith("inline")
    assert _public(link["url"] + "?path=../private.txt").status == 400
    assert _public(link["url"] + "?path=nothing").status == 404

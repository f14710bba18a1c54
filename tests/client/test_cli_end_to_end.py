"""The `shardbox` user commands against a real `shardbox up`, as a person at a terminal uses them."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import re
import signal
import stat
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.client.helpers import Cli, add_user
from tests.integration.cluster import Cluster
from tests.integration.ops import wait_for

PASSWORD = "correct horse battery staple"
MiB = 1 << 20


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def http(url: str, headers: dict[str, str] | None = None, follow: bool = True) -> tuple[int, dict, bytes]:
    opener = urllib.request.build_opener() if follow else urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=60) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def api(cluster: Cluster, token: str, path: str) -> tuple[int, dict]:
    status, _, body = http(cluster.endpoint + "/api/v1" + path, {"Authorization": f"Bearer {token}"})
    return status, json.loads(body)


def random_file(path: Path, size: int) -> str:
    data = os.urandom(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def alice(cluster: Cluster) -> str:
    add_user(cluster, "alice", PASSWORD)
    return "alice"


@pytest.fixture
def cli(make_cli, cluster: Cluster, alice: str) -> Cli:
    c = make_cli("alice")
    c.run("login", cluster.endpoint, "--username", alice, "--password-stdin", stdin=PASSWORD + "\n")
    return c


def test_login_keeps_a_private_token_and_logout_revokes_it(make_cli, cluster: Cluster, alice: str):
    c = make_cli("laptop")
    out = c.json("login", cluster.endpoint, "--username", alice, "--password-stdin", stdin=PASSWORD + "\n")
    assert (out["user"], out["tenant"], out["server"]) == ("alice", "acme", cluster.endpoint)
    creds_file = Path(out["credentials"])
    assert creds_file == c.config_dir / "credentials.json"
    assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(c.config_dir.stat().st_mode) == 0o700
    token = json.loads(creds_file.read_text())["token"]
    me = c.json("whoami")
    assert me["user"]["name"] == "alice" and me["auth"] == "bearer"

    stranger = make_cli("stranger")
    bad = stranger.run("login", cluster.endpoint, "--username", alice, "--password-stdin", stdin="wrong\n",
                       check=False)
    assert bad.returncode == 1
    assert "InvalidCredentials" in bad.stderr
    assert not (stranger.config_dir / "credentials.json").exists()

    assert api(cluster, token, "/me")[0] == 200
    assert c.json("logout") == {"logged_out": True, "token_revoked": True}
    assert not creds_file.exists()
    assert api(cluster, token, "/me")[0] == 401
    again = c.run("ls", check=False)
    assert again.returncode == 1 and "shardbox login URL" in again.stderr


def _journal_upload_id(c: Cli, deadline: float) -> str:
    journal_dir = c.config_dir / "state" / "uploads"
    while time.monotonic() < deadline:
        entries = list(journal_dir.glob("*.json")) if journal_dir.exists() else []
        if entries:
            return json.loads(entries[0].read_text())["upload_id"]
        time.sleep(0.05)
    raise TimeoutError("the upload never recorded its session")


@pytest.mark.slow
def test_upload_killed_at_60_percent_resumes_with_only_the_missing_chunks(cli: Cli, cluster: Cluster,
                                                                          tmp_path):
    chunk = int(json.loads(http(cluster.endpoint + "/api/v1/info")[2])["chunk_size"])
    local = cli.cwd / "movie.bin"
    digest = random_file(local, 5 * chunk - 12345)            # 5 chunks, the last one short
    token = json.loads((cli.config_dir / "credentials.json").read_text())["token"]

    # First run: at a terminal (so the progress bar is drawn), one stream at 4 MiB/s so
    # chunks land one after another; killed once 3 of the 5 chunks (60%) are stored.
    leader, follower = pty.openpty()
    proc = cli.popen("upload", str(local), "--to", "/resume", "--streams", "1", "--limit-rate", "4M",
                     stdin=subprocess.DEVNULL, stdout=follower, stderr=follower)
    os.close(follower)
    screen = bytearray()

    def read_terminal() -> None:
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:
                return
            if not data:
                return
            screen.extend(data)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 180
        upload_id = _journal_upload_id(cli, deadline)
        landed: list[int] = []
        while time.monotonic() < deadline and len(landed) < 3:
            assert proc.poll() is None, "the upload finished before it could be killed"
            landed = api(cluster, token, f"/uploads/{upload_id}")[1]["landed"]
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(10)
        os.close(leader)
    status, session = api(cluster, token, f"/uploads/{upload_id}")
    assert status == 200
    landed = sorted(session["landed"])
    assert 3 <= len(landed) < 5, landed
    text = screen.decode(errors="replace")
    assert "movie.bin" in text
    assert re.search(r"\d(\.\d)? [kMG]?B/s", text), text[-2000:]      # rate
    assert re.search(r"\d:\d\d:\d\d", text), text[-2000:]             # time left

    # Second run: finds its session, sends exactly the chunks that had not landed.
    out = cli.json("upload", str(local), "--to", "/resume")["uploads"][0]
    missing = [i for i in range(5) if i not in landed]
    assert out["resumed"] is True and out["upload_id"] == upload_id
    assert out["chunks_sent"] == len(missing)
    assert out["bytes_sent"] == sum(min(chunk, local.stat().st_size - i * chunk) for i in missing)
    assert out["file"]["path"] == "/resume/movie.bin" and out["file"]["size"] == local.stat().st_size
    assert not list((cli.config_dir / "state" / "uploads").glob("*.json"))

    got = cli.json("download", "/resume/movie.bin", str(tmp_path / "back.bin"))
    assert got["size"] == local.stat().st_size
    assert hashlib.sha256((tmp_path / "back.bin").read_bytes()).hexdigest() == digest


def test_a_file_already_stored_sends_no_chunk(cli: Cli):
    local = cli.cwd / "installer.bin"
    random_file(local, 20 * MiB + 5)
    first = cli.json("upload", str(local), "--to", "/dedup/a")["uploads"][0]
    assert first["chunks_sent"] == first["chunks"] == 3 and first["chunks_already_stored"] == 0
    again = cli.json("upload", str(local), "--to", "/dedup/b")["uploads"][0]
    assert (again["chunks_sent"], again["bytes_sent"], again["chunks_already_stored"]) == (0, 0, 3)
    assert again["file"]["path"] == "/dedup/b/installer.bin"
    human = cli.run("upload", str(local), "--to", "/dedup/c").stdout
    assert "already stored, no chunk sent" in human


def test_folders_rename_move_and_trash(cli: Cli, tmp_path):
    cli.json("mkdir", "/docs")
    cli.json("mkdir", "/docs/old")
    note = cli.cwd / "a.txt"
    note.write_text("hello from the cli\n")
    cli.json("upload", str(note), "--to", "docs")
    listing = cli.json("ls", "/docs")
    assert [(i["name"], i["type"]) for i in listing["items"]] == [("old", "folder"), ("a.txt", "file")]
    assert "a.txt" in cli.run("ls", "/docs").stdout

    moved = cli.json("mv", "/docs/a.txt", "/docs/b.txt")
    assert moved["path"] == "/docs/b.txt"
    moved = cli.json("mv", "/docs/b.txt", "/docs/old")
    assert moved["path"] == "/docs/old/b.txt"
    assert [i["name"] for i in cli.json("ls", "/docs/old")["items"]] == ["b.txt"]
    cli.json("download", "/docs/old/b.txt", str(tmp_path))
    assert (tmp_path / "b.txt").read_text() == "hello from the cli\n"

    trashed = cli.json("rm", "/docs/old/b.txt")
    assert [t["path"] for t in trashed["trashed"]] == ["/docs/old/b.txt"]
    assert cli.json("ls", "/docs/old")["items"] == []
    missing = cli.run("ls", "/docs/old/b.txt", "--json", check=False)
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["error"] == {"code": "NotFound",
                                                   "message": "/docs/old/b.txt: no such file or folder"}


def test_share_links_from_the_cli(cli: Cli, cluster: Cluster):
    local = cli.cwd / "report.pdf"
    random_file(local, 300_000)
    cli.json("upload", str(local), "--to", "/share-me")
    # A link recipient gets 425 (retry later) while the new file is being scanned, so the
    # sharer sees "ready" first, as `shardbox ls` shows it.
    wait_for("the upload to be scanned", lambda: [i["status"] for i in cli.json("ls", "/share-me")["items"]]
             == ["ready"])

    dl = cli.json("share", "/share-me/report.pdf", "--download", "--expires", "7d", "--max-downloads", "5")
    assert dl["permission"] == "download" and dl["max_downloads"] == 5 and dl["expires_at"]
    status, headers, _ = http(dl["url"] + "/download", follow=False)
    assert status == 302
    status, headers, body = http(headers["Location"])
    assert status == 200 and body == local.read_bytes()
    assert headers["Content-Disposition"].startswith("attachment")

    view = cli.json("share", "--view", "/share-me/report.pdf", "--password-stdin", stdin="s3cret pass\n")
    assert view["has_password"] is True
    assert http(view["url"], {"Accept": "application/json"})[0] == 401
    status, _, body = http(view["url"], {"Accept": "application/json", "X-Share-Password": "s3cret pass"})
    doc = json.loads(body)
    assert status == 200 and doc["preview_url"] and "download_url" not in doc

    links = cli.json("share", "ls")["links"]
    mine = {link["id"]: link for link in links}
    assert {dl["id"], view["id"]} <= set(mine)
    assert not any("url" in link or "token" in link for link in links)
    assert dl["url"].rsplit("/", 1)[1] not in json.dumps(links)

    assert cli.json("share", "revoke", str(dl["id"])) == {"revoked": str(dl["id"])}
    assert http(dl["url"], {"Accept": "application/json"})[0] == 404
    assert http(view["url"], {"Accept": "application/json", "X-Share-Password": "s3cret pass"})[0] == 200
    assert dl["id"] not in {link["id"] for link in cli.json("share", "ls")["links"]}

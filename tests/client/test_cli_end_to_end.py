"""The `shardbox` user commands against a real `shardbox up`, as a person at a terminal uses them."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.client.helpers import Cli, add_user
from tests.integration.cluster import Cluster

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

"""The user client's local parts: credentials on disk, chunk hashing, remote paths, options."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from shardbox.client import USER_COMMANDS, credentials, journal, remote
from shardbox.client.chunking import content_hash, hash_file, read_chunk
from shardbox.client.commands import _rate, user_cli


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SHARDBOX_CONFIG_DIR", str(tmp_path / "cfg"))
    return tmp_path / "cfg"


def test_credentials_are_private_and_round_trip(config_dir):
    creds = credentials.Credentials(server="http://127.0.0.1:9000", token="sbx_secret", user="alice",
                                    tenant="acme", token_id="7")
    path = credentials.save(creds)
    assert path == config_dir / "credentials.json"
    assert stat.S_IMODE(os.stat(config_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert credentials.load() == creds
    assert not list(config_dir.glob("*.tmp*"))
    assert credentials.forget() is True
    with pytest.raises(credentials.NotLoggedIn, match="shardbox login"):
        credentials.load()


def test_credentials_readable_by_others_are_refused(config_dir):
    path = credentials.save(credentials.Credentials(server="http://h:1", token="t", user="u"))
    os.chmod(path, 0o644)
    with pytest.raises(credentials.NotLoggedIn, match="chmod 600"):
        credentials.load()


def test_chunk_plan_matches_independent_hashing(tmp_path):
    data = os.urandom(5 * 1000 + 17)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    plan = hash_file(path, chunk_size=1000)
    assert plan.size == len(data) and plan.count == 6
    expected = [hashlib.sha256(data[i:i + 1000]).hexdigest() for i in range(0, len(data), 1000)]
    assert list(plan.digests) == expected
    assert plan.content_hash == hashlib.sha256(b"".join(bytes.fromhex(d) for d in expected)).hexdigest()
    assert plan.span(5) == (5000, 17)
    assert read_chunk(path, plan, 5) == data[5000:]


def test_empty_file_has_no_chunks(tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    plan = hash_file(path, chunk_size=1000)
    assert plan.digests == () and plan.content_hash == hashlib.sha256(b"").hexdigest()
    assert content_hash([]) == plan.content_hash


def test_a_file_edited_after_hashing_is_reported_not_sent(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"a" * 3000)
    plan = hash_file(path, chunk_size=1000)
    path.write_bytes(b"a" * 1000 + b"b" * 2000)
    with pytest.raises(OSError, match="changed since it was hashed"):
        read_chunk(path, plan, 1)


def test_remote_paths():
    assert remote.normalise("") == "/"
    assert remote.normalise("docs//a.txt/") == "/docs/a.txt"
    assert remote.join("/docs", "a.txt") == "/docs/a.txt"
    assert remote.join("/", "a.txt") == "/a.txt"
    assert remote.split("/docs/a.txt") == ("/docs", "a.txt")
    assert remote.split("/a.txt") == ("/", "a.txt")
    with pytest.raises(ValueError, match=r"'\.\.'"):
        remote.normalise("/docs/../etc")


def test_expiry_durations_and_times():
    now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    assert remote.expiry("7d", now) == "2030-01-08T12:00:00Z"
    assert remote.expiry("12h", now) == "2030-01-02T00:00:00Z"
    assert remote.expiry("2w", now) == "2030-01-15T12:00:00Z"
    assert remote.expiry("2030-02-01T00:00:00+01:00", now) == "2030-01-31T23:00:00Z"
    with pytest.raises(ValueError, match="passed"):
        remote.expiry("2020-01-01T00:00:00Z", now)
    with pytest.raises(ValueError, match="duration like 7d"):
        remote.expiry("soon", now)


def test_rate_option():
    assert _rate("2M") == 2 << 20
    assert _rate("500k") == 500 << 10
    assert _rate("1GiB/s") == 1 << 30
    assert _rate("1000") == 1000
    with pytest.raises(ValueError, match="bytes per second"):
        _rate("fast")


def test_journal_round_trip(tmp_path):
    key = journal.journal_key("http://h:1", "alice", "/a.bin", "ab" * 32, 8 << 20)
    assert journal.find(key) is None
    local = tmp_path / "a.bin"
    local.write_bytes(b"x")
    journal.record(key, journal.new_entry("u1", "/a.bin", local, 1, 8 << 20))
    assert journal.find(key).upload_id == "u1"
    other = journal.journal_key("http://h:1", "alice", "/b.bin", "ab" * 32, 8 << 20)
    assert other != key and journal.find(other) is None
    journal.forget(key)
    assert journal.find(key) is None


def test_every_user_command_is_served_and_takes_json():
    assert set(USER_COMMANDS) == set(user_cli.commands)
    runner = CliRunner()
    for name in USER_COMMANDS:
        result = runner.invoke(user_cli, [name, "--help"])
        assert result.exit_code == 0, result.output
        if name != "share":
            assert "--json" in result.output
    for sub in ("create", "ls", "revoke"):
        assert "--json" in runner.invoke(user_cli, ["share", sub, "--help"]).output


def test_not_logged_in_is_one_clear_error_in_json_and_text():
    runner = CliRunner()
    result = runner.invoke(user_cli, ["ls", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["code"] == "NotLoggedIn"
    result = runner.invoke(user_cli, ["share", "ls"])
    assert result.exit_code == 1
    assert "shardbox login URL" in result.stderr


def test_share_needs_a_permission():
    result = CliRunner().invoke(user_cli, ["--json", "share", "/a.txt"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"] == {
        "code": "InvalidArgument", "message": "say what the link allows: --view or --download"}

"""Configuration: the shipped examples load, and mistakes are reported readably."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from config.settings import ConfigError, load_config, parse_config

EXAMPLES = Path(__file__).resolve().parent.parent / "config" / "examples"


@pytest.mark.parametrize("role", ["coordinator", "node", "gateway", "worker"])
def test_examples_load(role):
    cfg = load_config(EXAMPLES / f"{role}.toml", role)
    assert getattr(cfg, role) is not None


def test_errors_name_every_bad_field():
    with pytest.raises(ConfigError) as e:
        parse_config({"cluster": {"secret": "short"}, "node": {"id": "n", "listen": "x", "data_dir": "d",
                                                               "volume_sise": 5}}, "n.toml", "node")
    text = str(e.value)
    assert "cluster.secret" in text and "node.listen" in text and "node.volume_sise" in text


def test_role_section_required():
    with pytest.raises(ConfigError, match=r"\[gateway\] section is required"):
        parse_config({"cluster": {"secret": "x" * 20}}, "g.toml", "gateway")


def test_gateway_needs_a_32_byte_master_key():
    with pytest.raises(ConfigError, match="master_key"):
        parse_config({"cluster": {"secret": "x" * 20, "master_key": "c2hvcnQ="},
                      "gateway": {"listen": "127.0.0.1:1", "coordinator": "http://x"}}, "g.toml", "gateway")
    with pytest.raises(ConfigError, match="master_key is required"):
        parse_config({"cluster": {"secret": "x" * 20},
                      "gateway": {"listen": "127.0.0.1:1", "coordinator": "http://x"}}, "g.toml", "gateway")


def test_database_url_scheme_checked():
    with pytest.raises(ConfigError, match="database_url"):
        parse_config({"cluster": {"secret": "x" * 20},
                      "coordinator": {"listen": "127.0.0.1:1", "database_url": "mysql://x"}}, "c.toml")


def test_coordinator_url_must_be_plain_http():
    for bad in ("https://coord:9001", "coord:9001", "http://", "http://coord:port"):
        with pytest.raises(ConfigError, match="http://HOST:PORT"):
            parse_config(
                {"cluster": {"secret": "x" * 20, "master_key": base64.b64encode(b"k" * 32).decode()},
                 "gateway": {"listen": "127.0.0.1:1", "coordinator": bad}},
                "g.toml",
                "gateway",
            )


def test_worker_needs_the_master_key_and_one_clamd_address():
    base = {"cluster": {"secret": "x" * 20}, "worker": {"coordinator": "http://127.0.0.1:9001"}}
    with pytest.raises(ConfigError, match="master_key is required to run a worker"):
        parse_config(base, "w.toml", "worker")
    key = base64.b64encode(b"k" * 32).decode()
    ok = {**base, "cluster": {"secret": "x" * 20, "master_key": key}}
    assert parse_config(ok, "w.toml", "worker").worker.scan.backend == "builtin"
    clamd = {**ok, "worker": {**ok["worker"], "scan": {"backend": "clamd"}}}
    with pytest.raises(ConfigError, match="exactly one of clamd_socket and clamd_address"):
        parse_config(clamd, "w.toml", "worker")
    bad_address = {**ok, "worker": {**ok["worker"], "scan": {"clamd_address": "nohost"}}}
    with pytest.raises(ConfigError, match=r"worker\.scan\.clamd_address"):
        parse_config(bad_address, "w.toml", "worker")

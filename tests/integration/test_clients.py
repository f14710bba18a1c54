"""Real S3 clients other than boto3: aws cli, rclone, s3cmd, the minio SDK."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

MiB = 1 << 20


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "a.txt": b"hello\n",
        "empty": b"",
        "dir/b.bin": os.urandom(300_000),
        "dir/sub/c.bin": os.urandom(9 * MiB + 7),     # multipart for aws cli (threshold 8 MiB)
        "dir/sub/ünïcode name.txt": "grüße".encode(),
        "other/d.bin": os.urandom(1 * MiB),
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return files


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_aws_cli_cp_sync_ls_rm(cluster, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    cluster.aws("s3", "mb", "s3://cli-bucket")
    cluster.aws("s3", "cp", str(src / "dir/sub/c.bin"), "s3://cli-bucket/single/c.bin")
    cluster.aws("s3", "sync", str(src), "s3://cli-bucket/tree")
    ls = cluster.aws("s3", "ls", "--recursive", "s3://cli-bucket/tree/").stdout
    assert ls.count("\n") == 6
    again = cluster.aws("s3", "sync", str(src), "s3://cli-bucket/tree").stdout
    assert again.strip() == "", f"second sync should copy nothing: {again}"
    dst = tmp_path / "dst"
    cluster.aws("s3", "sync", "s3://cli-bucket/tree", str(dst))
    assert tree_digest(dst) == tree_digest(src)
    cluster.aws("s3", "cp", "s3://cli-bucket/single/c.bin", str(tmp_path / "c.bin"))
    assert (tmp_path / "c.bin").read_bytes() == (src / "dir/sub/c.bin").read_bytes()
    cluster.aws("s3", "rm", "--recursive", "s3://cli-bucket/")
    assert cluster.aws("s3", "ls", "--recursive", "s3://cli-bucket/").stdout == ""
    cluster.aws("s3", "rb", "s3://cli-bucket")
    missing = cluster.aws("s3", "ls", "s3://cli-bucket", check=False)
    assert missing.returncode != 0 and "NoSuchBucket" in missing.stderr


def test_aws_cli_s3api_errors(cluster):
    r = cluster.aws("s3api", "get-object", "--bucket", "nope-bucket", "--key", "k", "/dev/null", check=False)
    assert r.returncode != 0 and "NoSuchBucket" in r.stderr


@pytest.mark.skipif(shutil.which("rclone") is None, reason="rclone is installed by scripts/setup.sh --test")
def _clean_env() -> dict[str, str]:
    """rclone would try to load AWS_CA_BUNDLE and friends even for a plain-HTTP endpoint."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and "CA_BUNDLE" not in k}


def test_rclone_copy_and_check(cluster, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    conf = tmp_path / "rclone.conf"
    conf.write_text(
        "[sbx]\ntype = s3\nprovider = Other\n"
        f"access_key_id = {cluster.info['access_key']}\nsecret_access_key = {cluster.info['secret_key']}\n"
        f"endpoint = {cluster.endpoint}\nforce_path_style = true\nregion = us-east-1\n")
    base = ["rclone", "--config", str(conf), "--low-level-retries", "2", "--retries", "1"]
    subprocess.run([*base, "mkdir", "sbx:rclone-bucket"], check=True, capture_output=True, timeout=120,
                   env=_clean_env())
    subprocess.run([*base, "copy", str(src), "sbx:rclone-bucket/tree"], check=True, capture_output=True,
                   timeout=300, env=_clean_env())
    check = subprocess.run([*base, "check", str(src), "sbx:rclone-bucket/tree"], capture_output=True,
                           text=True, timeout=300, env=_clean_env())
    assert check.returncode == 0, check.stderr
    dst = tmp_path / "dst"
    subprocess.run([*base, "copy", "sbx:rclone-bucket/tree", str(dst)], check=True, capture_output=True,
                   timeout=300, env=_clean_env())
    assert tree_digest(dst) == tree_digest(src)


@pytest.mark.skipif(shutil.which("s3cmd") is None, reason="s3cmd is installed by scripts/setup.sh --test")
def test_s3cmd_put_get_sync(cluster, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    hostport = cluster.endpoint.removeprefix("http://")
    cfg = tmp_path / "s3cfg"
    cfg.write_text(
        "[default]\n"
        f"access_key = {cluster.info['access_key']}\nsecret_key = {cluster.info['secret_key']}\n"
        f"host_base = {hostport}\nhost_bucket = {hostport}\nuse_https = False\nsignature_v2 = False\n"
        "bucket_location = us-east-1\n")
    base = ["s3cmd", "-c", str(cfg)]
    subprocess.run([*base, "mb", "s3://s3cmd-bucket"], check=True, capture_output=True, timeout=120)
    subprocess.run([*base, "sync", f"{src}/", "s3://s3cmd-bucket/tree/"], check=True, capture_output=True,
                   timeout=300)
    dst = tmp_path / "dst"
    dst.mkdir()
    subprocess.run([*base, "sync", "s3://s3cmd-bucket/tree/", f"{dst}/"], check=True, capture_output=True,
                   timeout=300)
    assert tree_digest(dst) == tree_digest(src)
    ls = subprocess.run([*base, "ls", "-r", "s3://s3cmd-bucket/"], check=True, capture_output=True, text=True)
    assert len(ls.stdout.strip().splitlines()) == 6


def test_minio_sdk(cluster, tmp_path):
    minio = pytest.importorskip("minio")
    client = minio.Minio(cluster.endpoint.removeprefix("http://"), access_key=cluster.info["access_key"],
                         secret_key=cluster.info["secret_key"], secure=False)
    client.make_bucket("minio-bucket")
    data = os.urandom(6 * MiB)
    p = tmp_path / "m.bin"
    p.write_bytes(data)
    client.fput_object("minio-bucket", "m.bin", str(p))
    resp = client.get_object("minio-bucket", "m.bin")
    try:
        assert resp.read() == data
    finally:
        resp.close()
        resp.release_conn()
    assert [o.object_name for o in client.list_objects("minio-bucket", recursive=True)] == ["m.bin"]

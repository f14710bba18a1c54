"""Lost nodes seen through S3: reads survive 4 dead nodes, 5 give a clean 503, failed writes leave nothing.

Runs its own cluster (it kills nodes, the shared one must stay whole).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from tests.gateway.cluster import MiniCluster


@pytest.fixture(scope="module")
def doomed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MiniCluster]:
    mc = MiniCluster(tmp_path_factory.mktemp("gateway-faults"))
    try:
        mc.start()
        yield mc
    finally:
        mc.stop()


def test_reads_degrade_cleanly_and_failed_writes_leave_nothing(doomed: MiniCluster) -> None:
    s3 = doomed.boto3_client()
    s3.create_bucket(Bucket="faults")
    body = os.urandom(2 * (1 << 20) + 5)
    s3.put_object(Bucket="faults", Key="obj", Body=body)
    for i in range(4):
        doomed.kill_node(i)
    assert s3.get_object(Bucket="faults", Key="obj")["Body"].read() == body
    ranged = s3.get_object(Bucket="faults", Key="obj", Range="bytes=1048570-1048600")["Body"].read()
    assert ranged == body[1048570:1048601]
    doomed.kill_node(4)
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket="faults", Key="obj")
    err = info.value.response
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == ("ServiceUnavailable", 503)
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket="faults", Key="new", Body=os.urandom(100_000))
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="faults")["Contents"]] == ["obj"]
    assert not s3.list_multipart_uploads(Bucket="faults").get("Uploads")


def test_gateway_stops_cleanly_on_sigterm(doomed: MiniCluster) -> None:
    import signal

    gateway = doomed.procs["gateway"]
    gateway.send_signal(signal.SIGTERM)
    assert gateway.wait(timeout=20) == 0
    assert '"gateway.stopping"' in doomed.log_tail("gateway", 5)


def test_bad_config_is_refused_with_a_message(tmp_path) -> None:
    import subprocess
    import sys

    cfg = tmp_path / "gw.toml"
    cfg.write_text('[cluster]\nsecret = "0123456789abcdef0123"\n')
    cmd = [sys.executable, "-m", "shardbox", "gateway", "--config", str(cfg)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "[gateway] section is required" in proc.stderr

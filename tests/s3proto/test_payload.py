"""Body decoding: plain, signed, aws-chunked (signed, signed trailer, unsigned trailer)."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import socket
import zlib

import pytest
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum

from tests.s3proto.client import (
    Headers,
    send,
    sign,
    signed_chunks,
    signing_key,
    unsigned_chunks,
)
from tests.s3proto.echo_server import AWS_EXAMPLE_KEY, SECRET_KEY, EchoServer

STREAMING = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def streaming_headers(server: EchoServer, target: str, mode: str, decoded_length: int,
                      extra: dict[str, str] | None = None) -> Headers:
    headers = {"X-Amz-Content-SHA256": mode, "Content-Encoding": "aws-chunked",
               "x-amz-decoded-content-length": str(decoded_length), **(extra or {})}
    return sign(server.port, "PUT", target, headers=headers, generic=True)


def chain_inputs(headers: Headers) -> tuple[bytes, str, str, str]:
    h = dict(headers)
    amz_date = h["X-Amz-Date"]
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    seed = h["Authorization"].rsplit("Signature=", 1)[1]
    return signing_key(SECRET_KEY, amz_date[:8]), amz_date, scope, seed


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


# ------------------------------------------------------------------ AWS published example


def test_aws_documented_streaming_example(server: EchoServer) -> None:
    """The example of AWS's "Transferring Payload in Multiple Chunks" page, byte for byte."""
    server.fixed_now = 1369353600.0          # 2013-05-24T00:00:00Z
    seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    sigs = ["ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"]
    body = (f"10000;chunk-signature={sigs[0]}\r\n".encode() + b"a" * 65536 + b"\r\n"
            + f"400;chunk-signature={sigs[1]}\r\n".encode() + b"a" * 1024 + b"\r\n"
            + f"0;chunk-signature={sigs[2]}\r\n\r\n".encode())
    assert len(body) == 66824
    headers = [
        ("Host", "s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
                          "aws4_request,SignedHeaders=content-encoding;content-length;host;"
                          "x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;"
                          f"x-amz-storage-class,Signature={seed}"),
        ("x-amz-content-sha256", STREAMING),
        ("Content-Encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "66560"),
        ("Content-Length", "66824"),
    ]
    info = send(server.port, "PUT", "/examplebucket/chunkObject.txt", headers, body).json()
    assert info["access_key"] == AWS_EXAMPLE_KEY
    assert info["payload_mode"] == "streaming-signed"
    assert info["body_len"] == 66560
    assert info["body_sha256"] == hashlib.sha256(b"a" * 66560).hexdigest()
    # a signature from the middle of the chain, swapped: the chain is broken
    bad = body.replace(sigs[1].encode(), sigs[0].encode())
    assert send(server.port, "PUT", "/examplebucket/chunkObject.txt", headers, bad).code \
        == "SignatureDoesNotMatch"


# ------------------------------------------------------------------ signed chunks


def test_signed_chunked_upload(server: EchoServer) -> None:
    data = os.urandom(300_000)
    headers = streaming_headers(server, "/b/chunked", STREAMING, len(data))
    body = signed_chunks(split(data, 65536), *chain_inputs(headers))
    info = send(server.port, "PUT", "/b/chunked", headers, body).json()
    assert info["payload_mode"] == "streaming-signed"
    assert info["chunked"] is True
    assert info["decoded_length"] == len(data)
    assert info["body_sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("where", ["data", "signature", "size-line"])
def test_signed_chunked_single_flipped_byte_fails(server: EchoServer, where: str) -> None:
    data = os.urandom(150_000)
    headers = streaming_headers(server, "/b/flip", STREAMING, len(data))
    body = bytearray(signed_chunks(split(data, 65536), *chain_inputs(headers)))
    if where == "data":
        pos = body.index(b"\r\n", body.index(b"\r\n") + 2) + 2 + 100   # inside the 2nd chunk's data
    elif where == "signature":
        pos = body.index(b"chunk-signature=") + len("chunk-signature=") + 5
    else:
        pos = 0
        body[pos:pos + 1] = b"f"            # 10000 -> f0000: a different size
        pos = -1
    if pos >= 0:
        body[pos] ^= 0x01
        if where == "signature" and not chr(body[pos]).isalnum():
            body[pos] = ord("0") if body[pos] != ord("0") else ord("1")
    reply = send(server.port, "PUT", "/b/flip", headers, bytes(body))
    expected = (400, "IncompleteBody") if where == "size-line" else (403, "SignatureDoesNotMatch")
    assert (reply.status, reply.code) == expected     # f0000 announces more than the body holds


def test_signed_chunks_reordered_fail(server: EchoServer) -> None:
    data = b"A" * 70000 + b"B" * 70000
    headers = streaming_headers(server, "/b/order", STREAMING, len(data))
    key, amz_date, scope, seed = chain_inputs(headers)
    good = signed_chunks(split(data, 70000), key, amz_date, scope, seed)
    swapped = signed_chunks([data[70000:], data[:70000]], key, amz_date, scope, seed)
    assert send(server.port, "PUT", "/b/order", headers, good).status == 200
    # A body signed for other data (same seed) does not verify once chunks are mixed.
    first_frame_end = good.index(b"\r\n", good.index(b"\r\n") + 2) + 2
    mixed = swapped[:first_frame_end] + good[first_frame_end:]
    assert send(server.port, "PUT", "/b/order", headers, mixed).code == "SignatureDoesNotMatch"


def test_signed_chunk_without_signature(server: EchoServer) -> None:
    headers = streaming_headers(server, "/b/nosig", STREAMING, 5)
    reply = send(server.port, "PUT", "/b/nosig", headers, unsigned_chunks([b"hello"]))
    assert reply.code == "SignatureDoesNotMatch"


def test_signed_trailer(server: EchoServer) -> None:
    data = os.urandom(200_000)
    headers = streaming_headers(server, "/b/st", STREAMING_TRAILER, len(data),
                                {"x-amz-trailer": "x-amz-checksum-crc32"})
    inputs = chain_inputs(headers)
    body = signed_chunks(split(data, 65536), *inputs, trailers=[("x-amz-checksum-crc32", crc32_b64(data))])
    info = send(server.port, "PUT", "/b/st", headers, body).json()
    assert info["payload_mode"] == "streaming-signed-trailer"
    assert info["trailers"] == {"x-amz-checksum-crc32": crc32_b64(data)}
    assert info["checksums"]["crc32"] == crc32_b64(data)
    # a different trailer value breaks the trailer signature
    forged = body.replace(crc32_b64(data).encode(), b"AAAAAA==")
    assert send(server.port, "PUT", "/b/st", headers, forged).code == "SignatureDoesNotMatch"


def test_signed_trailer_with_wrong_checksum_is_bad_digest(server: EchoServer) -> None:
    data = os.urandom(10_000)
    headers = streaming_headers(server, "/b/st2", STREAMING_TRAILER, len(data),
                                {"x-amz-trailer": "x-amz-checksum-crc32"})
    body = signed_chunks([data], *chain_inputs(headers), trailers=[("x-amz-checksum-crc32", "AAAAAA==")])
    reply = send(server.port, "PUT", "/b/st2", headers, body)
    assert reply.status == 400
    assert reply.code == "BadDigest"


def test_signed_frame_too_large(server: EchoServer) -> None:
    headers = streaming_headers(server, "/b/huge", STREAMING, 32 << 20)
    body = b"2000000;chunk-signature=" + b"0" * 64 + b"\r\n" + b"x" * 1000
    reply = send(server.port, "PUT", "/b/huge", [*headers, ("Content-Length", str(len(body)))], body)
    assert reply.code == "InvalidChunkSizeError"


# ------------------------------------------------------------------ unsigned trailer


def test_unsigned_trailer_with_botocore_writer(server: EchoServer) -> None:
    data = os.urandom(2_500_000)
    wrapper = AwsChunkedWrapper(io.BytesIO(data), checksum_cls=Crc32Checksum,
                                checksum_name="x-amz-checksum-crc32", chunk_size=1 << 20)
    body = wrapper.read()
    headers = streaming_headers(server, "/b/ut", UNSIGNED_TRAILER, len(data),
                                {"x-amz-trailer": "x-amz-checksum-crc32"})
    info = send(server.port, "PUT", "/b/ut", headers, body).json()
    assert info["payload_mode"] == "streaming-unsigned-trailer"
    assert info["body_sha256"] == hashlib.sha256(data).hexdigest()
    assert info["trailers"] == {"x-amz-checksum-crc32": crc32_b64(data)}


def test_unsigned_trailer_checksum_mismatch(server: EchoServer) -> None:
    data = b"payload" * 1000
    headers = streaming_headers(server, "/b/ut2", UNSIGNED_TRAILER, len(data),
                                {"x-amz-trailer": "x-amz-checksum-crc32"})
    body = unsigned_chunks([data], [("x-amz-checksum-crc32", crc32_b64(data + b"!"))])
    assert send(server.port, "PUT", "/b/ut2", headers, body).code == "BadDigest"


def test_unsigned_trailer_missing(server: EchoServer) -> None:
    data = b"payload"
    headers = streaming_headers(server, "/b/ut3", UNSIGNED_TRAILER, len(data),
                                {"x-amz-trailer": "x-amz-checksum-crc32"})
    assert send(server.port, "PUT", "/b/ut3", headers, unsigned_chunks([data])).code == "InvalidRequest"


def test_unsigned_chunks_over_http_chunked_transfer(server: EchoServer) -> None:
    """aws-chunked inside HTTP Transfer-Encoding: chunked, in many small socket writes."""
    data = os.urandom(500_000)
    headers = streaming_headers(server, "/b/te", UNSIGNED_TRAILER, len(data),
                                {"x-amz-trailer": "x-amz-checksum-crc32"})
    body = unsigned_chunks(split(data, 100_000), [("x-amz-checksum-crc32", crc32_b64(data))])
    http_chunked = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in split(body, 7919))
    http_chunked += b"0\r\n\r\n"
    reply = send(server.port, "PUT", "/b/te", [*headers, ("Transfer-Encoding", "chunked")], http_chunked)
    info = reply.json()
    assert info["body_sha256"] == hashlib.sha256(data).hexdigest()
    assert info["pieces"] > 1


# ------------------------------------------------------------------ length and framing errors


def test_decoded_length_mismatch(server: EchoServer) -> None:
    data = b"z" * 90
    for declared in (100, 80):
        headers = streaming_headers(server, "/b/len", UNSIGNED_TRAILER, declared)
        reply = send(server.port, "PUT", "/b/len", headers, unsigned_chunks([data]))
        assert reply.status == 400
        assert reply.code == "IncompleteBody", declared


def test_decoded_length_mismatch_signed(server: EchoServer) -> None:
    data = b"q" * 5000
    headers = streaming_headers(server, "/b/len2", STREAMING, 6000)
    body = signed_chunks([data], *chain_inputs(headers))
    assert send(server.port, "PUT", "/b/len2", headers, body).code == "IncompleteBody"


@pytest.mark.parametrize("body, code", [
    (b"zz\r\nhello\r\n0\r\n\r\n", "InvalidChunkSizeError"),         # not hex
    (b"5\r\nhello!!0\r\n\r\n", "IncompleteBody"),                   # data longer than its size
    (b"5\r\nhello\r\n", "IncompleteBody"),                          # no final chunk
    (b"a\r\nhello\r\n0\r\n\r\n", "IncompleteBody"),                 # body ends inside the chunk
    (b"5\r\nhello\r\n0\r\n\r\ngarbage", "InvalidRequest"),          # data after the end
    (b"5\r\nhello\r\n0\r\nno-colon-here\r\n\r\n", "InvalidRequest"),  # malformed trailer
    (b"0x5\r\nhello\r\n0\r\n\r\n", "InvalidChunkSizeError"),
    (b"1" * 5000, "InvalidChunkSizeError"),                         # endless size line
])
def test_malformed_framing(server: EchoServer, body: bytes, code: str) -> None:
    headers = streaming_headers(server, "/b/frame", UNSIGNED_TRAILER, 5)
    reply = send(server.port, "PUT", "/b/frame", headers, body)
    assert reply.status == 400
    assert reply.code == code


def test_truncated_plain_body_is_incomplete(server: EchoServer) -> None:
    """The client promises 100000 bytes, sends 40000 and disconnects."""
    body = b"t" * 100_000
    headers = sign(server.port, "PUT", "/b/trunc", body, unsigned=True)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        head = "PUT /b/trunc HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
        head += f"Content-Length: {len(body)}\r\n\r\n"
        sock.sendall(head.encode() + body[:40_000])
    outcomes = server.wait_outcomes(1)
    assert len(outcomes) == 1
    assert outcomes[0].code == "IncompleteBody"


def test_truncated_chunked_body_is_incomplete(server: EchoServer) -> None:
    data = os.urandom(200_000)
    headers = streaming_headers(server, "/b/trunc2", STREAMING, len(data))
    body = signed_chunks(split(data, 65536), *chain_inputs(headers))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        head = "PUT /b/trunc2 HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
        head += f"Content-Length: {len(body)}\r\n\r\n"
        sock.sendall(head.encode() + body[:100_000])
    outcomes = server.wait_outcomes(1)
    assert outcomes[0].code == "IncompleteBody"


def test_big_plain_body_streams_in_pieces(server: EchoServer) -> None:
    data = os.urandom(8 << 20)
    info = send(server.port, "PUT", "/b/big", sign(server.port, "PUT", "/b/big", data), data).json()
    assert info["body_sha256"] == hashlib.sha256(data).hexdigest()
    assert info["pieces"] >= 8


def test_plain_body_over_http_chunked_transfer(server: EchoServer) -> None:
    """A signed plain body sent with Transfer-Encoding: chunked, including an empty HTTP chunk
    boundary mid-body: every byte arrives once and the payload hash still checks."""
    data = os.urandom(300_001)
    headers = [(k, v) for k, v in sign(server.port, "PUT", "/b/tep", data) if k.lower() != "content-length"]
    http_chunked = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in split(data, 65_537))
    http_chunked += b"0\r\n\r\n"
    headers.append(("Transfer-Encoding", "chunked"))
    info = send(server.port, "PUT", "/b/tep", headers, http_chunked).json()
    assert info["body_sha256"] == hashlib.sha256(data).hexdigest()
    tampered = http_chunked.replace(data[:10], bytes(10), 1)
    reply = send(server.port, "PUT", "/b/tep", headers, tampered)
    assert reply.code == "XAmzContentSHA256Mismatch"


def test_aws_chunked_encoding_with_unsigned_payload(server: EchoServer) -> None:
    """Content-Encoding: aws-chunked with UNSIGNED-PAYLOAD is decoded too (some SDKs send it)."""
    data = b"hello world"
    body = unsigned_chunks([data])
    headers = sign(server.port, "PUT", "/b/ce", body, {"Content-Encoding": "aws-chunked",
                                                       "x-amz-decoded-content-length": str(len(data))},
                   unsigned=True)
    info = send(server.port, "PUT", "/b/ce", headers, body).json()
    assert info["chunked"] is True
    assert info["body_len"] == len(data)

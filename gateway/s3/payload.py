"""Decoding and checking S3 request bodies while they stream in.

`PayloadStream` turns whatever the client sent (a plain body, a body whose SHA-256 was
signed, or an `aws-chunked` body with per-chunk signatures and trailing checksums) into the
object bytes, in large pieces, without holding more than one frame in memory. Every check
that can only be made at the end (the signed SHA-256, the decoded length, the trailer
signature) raises from the iterator, so a handler that finalizes only after the loop ran to
completion never commits a body that failed verification.

aws-chunked framing (AWS "Transferring Payload in Multiple Chunks"):

    <hex-size>[;chunk-signature=<sig>]\\r\\n<data>\\r\\n   ... repeated ...
    0[;chunk-signature=<sig>]\\r\\n
    [<trailer-name>:<value>\\r\\n ... [x-amz-trailer-signature:<sig>\\r\\n]]
    \\r\\n
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from config.serving import BodyTimeout
from config.values import BadValue, parse_uint, secrets_equal
from gateway.s3.errors import S3Error
from gateway.s3.sigv4 import EMPTY_SHA256, AuthContext

READ_SIZE = 1 << 20                 # one read from the socket buffer, at most
MAX_SIGNED_FRAME = 16 << 20         # a signed frame is buffered whole to verify it first
MAX_LINE = 4096                     # chunk header or trailer line
MAX_TRAILER_BYTES = 16 << 10

_HEX_SIZE = re.compile(rb"^[0-9a-fA-F]{1,16}$")
_TRAILER_SIG = "x-amz-trailer-signature"


def is_aws_chunked(request: web.Request, auth: AuthContext) -> bool:
    """True when the body uses aws-chunked framing (streaming modes, or the encoding says so)."""
    if auth.payload_mode.startswith("streaming-"):
        return True
    return auth.payload_mode == "unsigned" and "aws-chunked" in _encodings(request)


def stored_content_encoding(request: web.Request) -> str | None:
    """Content-Encoding to store with the object: the client's, minus the `aws-chunked` transfer coding."""
    rest = [e for e in _encodings(request) if e != "aws-chunked"]
    return ", ".join(rest) or None


def _encodings(request: web.Request) -> list[str]:
    value = request.headers.get("Content-Encoding", "")
    return [e.strip().lower() for e in value.split(",") if e.strip()]


def _chunk_string_to_sign(auth: AuthContext, previous: str, data_sha256: str) -> str:
    return "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", auth.amz_date, auth.scope, previous, EMPTY_SHA256,
                      data_sha256])


def _trailer_string_to_sign(auth: AuthContext, previous: str, canonical: bytes) -> str:
    return "\n".join(["AWS4-HMAC-SHA256-TRAILER", auth.amz_date, auth.scope, previous,
                      hashlib.sha256(canonical).hexdigest()])


def _sign(auth: AuthContext, string_to_sign: str) -> str:
    return hmac.new(auth.signing_key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


# What reading a request body raises when the client stops sending or breaks the framing.
_BODY_ERRORS = (ConnectionError, HttpProcessingError, asyncio.IncompleteReadError)


class PayloadStream:
    """Async iterator over the decoded body: `async for piece in PayloadStream(request, auth)`.

    Attributes known before reading: `decoded_length` (object size the client declared, or
    None for a body of unknown length), `chunked`. After the iterator finished: `trailers`
    (lowercased name -> value, signature removed) and `bytes_read` (decoded bytes).
    """

    def __init__(self, request: web.Request, auth: AuthContext, *, read_size: int = READ_SIZE,
                 max_frame: int = MAX_SIGNED_FRAME) -> None:
        self._content = request.content
        self._auth = auth
        self._read_size = read_size
        self._max_frame = max_frame
        self.chunked = is_aws_chunked(request, auth)
        self.trailers: dict[str, str] = {}
        self.bytes_read = 0
        self.content_length: int | None = request.content_length
        self.decoded_length: int | None
        if self.chunked:
            declared = request.headers.get("x-amz-decoded-content-length")
            self.decoded_length = _parse_length(declared) if declared is not None else None
        else:
            self.decoded_length = self.content_length
        self._signed_chunks = auth.payload_mode in ("streaming-signed", "streaming-signed-trailer")
        self._buf = bytearray()
        self._pos = 0
        self._started = False
        self._hash_here = True

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._started:
            raise RuntimeError("a request body can be read only once")
        self._started = True
        return self._chunked() if self.chunked else self._raw()

    def hand_off_payload_hash(self) -> bool:
        """Let the consumer hash a signed plain body itself; True if there is a hash to check.

        The data path already hashes every byte on worker threads; hashing here too would
        cost a second SHA-256 pass on the event loop. The consumer then must call
        `check_payload_sha256` with what it computed before it commits anything.
        """
        self._hash_here = False
        return self._auth.payload_mode == "signed"

    def check_payload_sha256(self, computed_hex: str) -> None:
        if self._auth.payload_mode == "signed" and computed_hex != self._auth.payload_sha256:
            raise S3Error("XAmzContentSHA256Mismatch",
                          ClientComputedContentSHA256=self._auth.payload_sha256 or "",
                          S3ComputedContentSHA256=computed_hex)

    # ------------------------------------------------------------------ socket reads

    async def _read(self, n: int) -> bytes:
        try:
            return await self._content.read(n)
        except BodyTimeout as exc:
            raise S3Error("RequestTimeout") from exc
        except _BODY_ERRORS as exc:
            raise S3Error("IncompleteBody") from exc

    async def _read_piece(self) -> bytes:
        """The next piece of body as the parser delivered it (b"" at the end).

        Unlike read(n), which joins or slices the parser's pieces into new bytes objects
        (a copy of most of the body), this hands each piece over as it is.
        """
        try:
            while True:
                data, end_of_http_chunk = await self._content.readchunk()
                # (b"", True) marks a Transfer-Encoding chunk boundary, except on aiohttp's
                # shared empty body, which answers it forever once read: check for the end.
                if data or not end_of_http_chunk or self._content.at_eof():
                    return data
        except BodyTimeout as exc:
            raise S3Error("RequestTimeout") from exc
        except _BODY_ERRORS as exc:
            raise S3Error("IncompleteBody") from exc

    async def _more(self, at_least: int = 1) -> bool:
        """Append at least `at_least` more bytes to the buffer; False at end of body."""
        if self._pos:
            del self._buf[:self._pos]
            self._pos = 0
        goal = len(self._buf) + at_least
        while len(self._buf) < goal:
            data = await self._read(max(self._read_size, goal - len(self._buf)))
            if not data:
                return False
            self._buf += data
        return True

    def _available(self) -> int:
        return len(self._buf) - self._pos

    # ------------------------------------------------------------------ plain bodies

    async def _raw(self) -> AsyncIterator[bytes]:
        digest = hashlib.sha256() if self._auth.payload_mode == "signed" and self._hash_here else None
        while True:
            data = await self._read_piece()
            if not data:
                break
            self.bytes_read += len(data)
            if digest is not None:
                digest.update(data)
            yield data
        if self.content_length is not None and self.bytes_read < self.content_length:
            raise S3Error("IncompleteBody")
        if digest is not None:
            self.check_payload_sha256(digest.hexdigest())

    # ------------------------------------------------------------------ aws-chunked

    async def _line(self, what: str) -> bytes | None:
        """Next CRLF-terminated line without its CRLF; None at a clean end of body."""
        while True:
            end = self._buf.find(b"\r\n", self._pos)
            if end >= 0:
                line = bytes(self._buf[self._pos:end])
                self._pos = end + 2
                return line
            if self._available() > MAX_LINE:
                raise S3Error("InvalidChunkSizeError", f"The {what} line is longer than {MAX_LINE} bytes.")
            if not await self._more():
                if self._available():
                    raise S3Error("IncompleteBody", f"The body ended inside a {what} line.")
                return None

    async def _expect_crlf(self) -> None:
        if self._available() < 2 and not await self._more(2 - self._available()):
            raise S3Error("IncompleteBody", "The body ended inside a chunk.")
        if self._buf[self._pos:self._pos + 2] != b"\r\n":
            raise S3Error("IncompleteBody", "A chunk's data is not followed by CRLF; the chunk size "
                                            "does not match the data sent.")
        self._pos += 2

    def _parse_header(self, line: bytes) -> tuple[int, str | None]:
        size_field, _, extensions = line.partition(b";")
        size_field = size_field.strip()
        if not _HEX_SIZE.match(size_field):
            raise S3Error("InvalidChunkSizeError",
                          f"Invalid chunk size {size_field[:32]!r} in aws-chunked body.")
        signature = None
        for ext in extensions.split(b";") if extensions else []:
            name, _, value = ext.strip().partition(b"=")
            if name == b"chunk-signature":
                signature = value.decode("latin-1").strip().lower()
        return int(size_field, 16), signature

    def _count(self, n: int) -> None:
        self.bytes_read += n
        if self.decoded_length is not None and self.bytes_read > self.decoded_length:
            raise S3Error("IncompleteBody", "The body holds more data than x-amz-decoded-content-length "
                                            "declares.")

    async def _chunked(self) -> AsyncIterator[bytes]:
        previous = self._auth.seed_signature
        while True:
            line = await self._line("chunk header")
            if line is None:
                raise S3Error("IncompleteBody", "The aws-chunked body ended before its final 0-size chunk.")
            size, signature = self._parse_header(line)
            if self._signed_chunks:
                if signature is None:
                    raise S3Error("SignatureDoesNotMatch", "A chunk of a signed aws-chunked body has no "
                                                           "chunk-signature.")
                if size > self._max_frame:
                    raise S3Error("InvalidChunkSizeError", f"Chunks larger than {self._max_frame} bytes "
                                                           "are not accepted.")
                self._count(size)
                pieces, data_sha256 = await self._frame(size)
                expected = _sign(self._auth, _chunk_string_to_sign(self._auth, previous, data_sha256))
                if not secrets_equal(expected, signature):
                    raise S3Error("SignatureDoesNotMatch", "The chunk signature we calculated does not "
                                                           "match the signature you provided.")
                previous = signature
                if size:
                    await self._expect_crlf()
                    for piece in pieces:
                        yield piece
            elif size:
                self._count(size)
                async for piece in self._stream_data(size):
                    yield piece
                await self._expect_crlf()
            if size == 0:
                break
        await self._read_trailers(previous)
        if self.decoded_length is not None and self.bytes_read != self.decoded_length:
            raise S3Error("IncompleteBody", f"x-amz-decoded-content-length is {self.decoded_length} but the "
                                            f"body decoded to {self.bytes_read} bytes.")

    async def _frame(self, size: int) -> tuple[list[bytes], str]:
        """The next `size` bytes as received pieces, and their SHA-256 hex.

        A signed frame must be verified before any of it is yielded, so it is held (as the
        pieces the socket delivered, never joined) until its signature checked out.
        """
        digest = hashlib.sha256()
        pieces = []
        async for piece in self._stream_data(size):
            digest.update(piece)
            pieces.append(piece)
        return pieces, digest.hexdigest()

    async def _stream_data(self, size: int) -> AsyncIterator[bytes]:
        """Yield `size` bytes of frame data as they arrive, without buffering the frame."""
        remaining = size
        if self._available():
            take = min(self._available(), remaining)
            with memoryview(self._buf) as view:
                piece = bytes(view[self._pos:self._pos + take])
            self._pos += take
            remaining -= take
            yield piece
        while remaining:
            data = await self._read(min(remaining, self._read_size))
            if not data:
                raise S3Error("IncompleteBody", "The body ended inside a chunk.")
            remaining -= len(data)
            yield data

    async def _read_trailers(self, previous: str) -> None:
        lines: list[tuple[str, str]] = []
        total = 0
        while True:
            line = await self._line("trailer")
            if not line:            # the closing empty line, or end of body
                break
            total += len(line)
            if total > MAX_TRAILER_BYTES:
                raise S3Error("InvalidRequest", "The aws-chunked trailer section is too large.")
            name, sep, value = line.decode("utf-8", "replace").partition(":")
            if not sep or not name.strip():
                raise S3Error("InvalidRequest", f"Malformed trailer line {line[:64]!r}.")
            lines.append((name.strip().lower(), value.strip()))
        if self._available() or await self._more():
            raise S3Error("InvalidRequest", "Unexpected data after the end of the aws-chunked body.")
        signature = next((v for n, v in lines if n == _TRAILER_SIG), None)
        trailers = [(n, v) for n, v in lines if n != _TRAILER_SIG]
        if self._auth.payload_mode == "streaming-signed-trailer":
            self._verify_trailer_signature(previous, trailers, signature)
        self.trailers = dict(trailers)

    def _verify_trailer_signature(self, previous: str, trailers: list[tuple[str, str]],
                                  signature: str | None) -> None:
        if signature is None:
            raise S3Error("SignatureDoesNotMatch", "The signed trailer has no x-amz-trailer-signature.")
        # Trailers are signed as "name:value\n" lines; accept sorted order (the SDKs) or as sent.
        for order in (sorted(trailers), trailers):
            canonical = "".join(f"{n}:{v}\n" for n, v in order).encode("utf-8")
            expected = _sign(self._auth, _trailer_string_to_sign(self._auth, previous, canonical))
            if secrets_equal(expected, signature.lower()):
                return
        raise S3Error("SignatureDoesNotMatch", "The trailer signature we calculated does not match the "
                                               "signature you provided.")


MAX_DECODED_LENGTH = 1 << 62       # far past any object; EntityTooLarge comes later


def _parse_length(value: str) -> int:
    value = value.strip()
    try:
        return parse_uint(value, MAX_DECODED_LENGTH)
    except BadValue:
        raise S3Error("InvalidArgument", "x-amz-decoded-content-length must be a non-negative integer.",
                      ArgumentName="x-amz-decoded-content-length", ArgumentValue=value) from None

"""S3 error codes and the error XML S3 clients expect.

Handlers raise `S3Error("NoSuchKey", resource=...)`; the router turns it into the XML body
with `error_response`. The table holds the HTTP status and the message AWS sends for each
code, so call sites only name the code unless they have something more precise to say.
"""

from __future__ import annotations

from aiohttp import web

# code -> (HTTP status, default message as AWS words it)
ERRORS: dict[str, tuple[int, str]] = {
    "AccessDenied": (403, "Access Denied"),
    "AuthorizationHeaderMalformed": (400, "The authorization header is malformed."),
    "AuthorizationQueryParametersError": (400, "Error parsing the X-Amz-Credential parameter."),
    "BadDigest": (400, "The Content-MD5 you specified did not match what we received."),
    "BucketAlreadyExists": (409, "The requested bucket name is not available. The bucket namespace is "
                                 "shared by all users of the system. Please select a different name "
                                 "and try again."),
    "BucketAlreadyOwnedByYou": (409, "Your previous request to create the named bucket succeeded and "
                                     "you already own it."),
    "BucketNotEmpty": (409, "The bucket you tried to delete is not empty"),
    "EntityTooLarge": (400, "Your proposed upload exceeds the maximum allowed size"),
    "EntityTooSmall": (400, "Your proposed upload is smaller than the minimum allowed object size."),
    "ExpiredToken": (400, "The provided token has expired."),
    "IncompleteBody": (400, "You did not provide the number of bytes specified by the Content-Length "
                            "HTTP header."),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "InvalidAccessKeyId": (403, "The AWS Access Key Id you provided does not exist in our records."),
    "InvalidArgument": (400, "Invalid Argument"),
    "InvalidBucketName": (400, "The specified bucket is not valid."),
    "InvalidChunkSizeError": (400, "Only the last chunk is allowed to have a size less than 8192 bytes"),
    "InvalidDigest": (400, "The Content-MD5 you specified is not valid."),
    "InvalidObjectState": (403, "The operation is not valid for the object's storage class"),
    "InvalidPart": (400, "One or more of the specified parts could not be found. The part may not have "
                         "been uploaded, or the specified entity tag may not match the part's entity "
                         "tag."),
    "InvalidPartOrder": (400, "The list of parts was not in ascending order. The parts list must be "
                              "specified in order by part number."),
    "InvalidRange": (416, "The requested range is not satisfiable"),
    "InvalidRequest": (400, "Invalid Request"),
    "InvalidStorageClass": (400, "The storage class you specified is not valid"),
    "KeyTooLongError": (400, "Your key is too long"),
    "MalformedXML": (400, "The XML you provided was not well-formed or did not validate against our "
                          "published schema"),
    "MaxMessageLengthExceeded": (400, "Your request was too big."),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "MissingContentLength": (411, "You must provide the Content-Length HTTP header."),
    "MissingSecurityHeader": (400, "Your request is missing a required header."),
    "NoSuchBucket": (404, "The specified bucket does not exist"),
    "NoSuchKey": (404, "The specified key does not exist."),
    "NoSuchUpload": (404, "The specified upload does not exist. The upload ID may be invalid, or the "
                          "upload may have been aborted or completed."),
    "NotImplemented": (501, "A header you provided implies functionality that is not implemented"),
    "NotModified": (304, "Not Modified"),
    "PreconditionFailed": (412, "At least one of the pre-conditions you specified did not hold"),
    "QuotaExceeded": (403, "The tenant's storage quota would be exceeded by this upload."),
    "RequestTimeout": (400, "Your socket connection to the server was not read from or written to within "
                           "the timeout period. Idle connections will be closed."),
    "RequestTimeTooSkewed": (403, "The difference between the request time and the current time is "
                                  "too large."),
    "ServiceUnavailable": (503, "Please reduce your request rate."),
    "SignatureDoesNotMatch": (403, "The request signature we calculated does not match the signature "
                                   "you provided. Check your key and signing method."),
    "SlowDown": (503, "Please reduce your request rate."),
    "XAmzContentSHA256Mismatch": (400, "The provided 'x-amz-content-sha256' header does not match what "
                                       "was computed."),
}

XML_CONTENT_TYPE = "application/xml"


class S3Error(Exception):
    """An S3 error answer: code, HTTP status, message and optional extra XML elements.

    `extra` keyword arguments become additional child elements of `<Error>` in the given
    order (e.g. `Region=...`, `Key=...`, `ExpectedDigest=...`), as AWS adds them.
    """

    def __init__(self, code: str, message: str | None = None, *, status: int | None = None,
                 resource: str | None = None, **extra: str) -> None:
        known_status, known_message = ERRORS.get(code, (400, code))
        self.code = code
        self.message = message if message is not None else known_message
        self.status = status if status is not None else known_status
        self.resource = resource
        self.extra = {k: str(v) for k, v in extra.items()}
        self.headers: dict[str, str] = {}   # extra response headers (e.g. Retry-After)
        super().__init__(f"{code}: {self.message}")


def error_xml(err: S3Error, request_id: str) -> bytes:
    """The `<Error>` document S3 sends for `err`."""
    from gateway.s3.xmlio import escape_text as escape  # xmlio imports this module
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<Error>',
             f"<Code>{escape(err.code)}</Code>",
             f"<Message>{escape(err.message)}</Message>"]
    if err.resource is not None:
        parts.append(f"<Resource>{escape(err.resource)}</Resource>")
    for name, value in err.extra.items():
        parts.append(f"<{name}>{escape(value)}</{name}>")
    parts.append(f"<RequestId>{escape(request_id)}</RequestId>")
    parts.append("</Error>")
    return "".join(parts).encode("utf-8")


def error_response(err: S3Error, request_id: str, method: str = "GET") -> web.Response:
    """An aiohttp response for `err`: XML body, except for HEAD requests and 304 (headers only)."""
    headers = {"x-amz-request-id": request_id, **err.headers}
    if method.upper() == "HEAD" or err.status == 304:
        if err.status != 304:
            # HEAD errors carry no body, but clients still want to know the content type.
            headers["Content-Type"] = XML_CONTENT_TYPE
        return web.Response(status=err.status, headers=headers)
    return web.Response(status=err.status, body=error_xml(err, request_id), headers=headers,
                        content_type=XML_CONTENT_TYPE)

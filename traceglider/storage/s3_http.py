"""S3 storage over `traceglider.awsapi` (the standard library), for the Lambda `/collect`
path, where boto3's import and first client would double the cold start.

The same interface and the same semantics as `storage.s3.S3Storage` (conditional puts,
409 as WriteConflict, listings sorted by key, quiet batch deletes); tests run the two
through the same checks. Stats and compaction keep the boto3 backend.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
from urllib.parse import quote

from traceglider.awsapi import AwsError, Client, Response, quote_path, region
from traceglider.errors import StorageError, WriteConflict
from traceglider.storage.base import ObjectInfo

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


class S3HttpStorage:
    def __init__(self, url: str, endpoint_url: str | None = None, client: Client | None = None) -> None:
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        self.url, self.bucket = url, bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        if endpoint_url:  # MinIO, R2, a test server: path-style addressing
            self._base = f"{endpoint_url.rstrip('/')}/{quote_path(bucket)}"
        elif "." in bucket:  # a dotted name does not match the wildcard certificate
            self._base = f"https://s3.{region()}.amazonaws.com/{quote_path(bucket)}"
        else:
            self._base = f"https://{bucket}.s3.{region()}.amazonaws.com"
        self.client = client or Client("s3", self._base)
        self._conditional_writes = True

    def _url(self, key: str = "", query: str = "") -> str:
        path = f"/{quote_path(self.prefix + key)}" if key else "/"
        return self._base + path + (f"?{query}" if query else "")

    def _call(self, what: str, method: str, url: str, body: bytes = b"",
              headers: dict[str, str] | None = None) -> Response:
        try:
            return self.client.call(method, url, body, headers)
        except AwsError as exc:
            raise StorageError(f"cannot {what}: {exc}") from exc

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        where = f"s3://{self.bucket}/{self.prefix}{key}"
        if if_absent and self._conditional_writes:
            answer = self._call(f"write {where}", "PUT", self._url(key), data, {"If-None-Match": "*"})
            if answer.status == 412:
                return False  # the object exists: an earlier attempt wrote it
            if answer.status == 409:
                raise WriteConflict(f"{where} is being written")
            if answer.status != 501:
                _check(answer, f"write {where}")
                return True
            self._conditional_writes = False
        if if_absent and self._call(f"check {where}", "HEAD", self._url(key)).status == 200:
            return False
        _check(self._call(f"write {where}", "PUT", self._url(key), data), f"write {where}")
        return True

    def get(self, key: str) -> bytes:
        where = f"s3://{self.bucket}/{self.prefix}{key}"
        answer = self._call(f"read {where}", "GET", self._url(key))
        _check(answer, f"read {where}")
        return answer.body

    def list(self, prefix: str) -> builtins.list[ObjectInfo]:
        import xml.etree.ElementTree as ET

        found: builtins.list[ObjectInfo] = []
        token = ""
        while True:
            query = f"list-type=2&prefix={quote(self.prefix + prefix, safe='')}"
            if token:
                query += f"&continuation-token={quote(token, safe='')}"
            answer = self._call(f"list s3://{self.bucket}/{self.prefix}{prefix}", "GET", self._url(query=query))
            _check(answer, f"list s3://{self.bucket}/{self.prefix}{prefix}")
            root = ET.fromstring(answer.body)
            for item in root.iter(f"{_NS}Contents"):
                key = item.findtext(f"{_NS}Key") or ""
                found.append(ObjectInfo(key[len(self.prefix):], int(item.findtext(f"{_NS}Size") or 0)))
            token = root.findtext(f"{_NS}NextContinuationToken") or ""
            if root.findtext(f"{_NS}IsTruncated") != "true" or not token:
                return sorted(found, key=lambda o: o.key)

    def delete(self, keys: builtins.list[str]) -> None:
        from xml.sax.saxutils import escape

        for start in range(0, len(keys), 1000):
            chunk = keys[start:start + 1000]
            body = ("<Delete><Quiet>true</Quiet>" + "".join(
                f"<Object><Key>{escape(self.prefix + key)}</Key></Object>" for key in chunk)
                + "</Delete>").encode()
            digest = base64.b64encode(hashlib.md5(body).digest()).decode()  # required by the API
            answer = self._call(f"delete from s3://{self.bucket}", "POST", self._url(query="delete="), body,
                                {"Content-MD5": digest, "Content-Type": "application/xml"})
            _check(answer, f"delete from s3://{self.bucket}")
            if b"<Error>" in answer.body:
                code, message = _error(answer)
                raise StorageError(f"cannot delete from s3://{self.bucket}: {code} {message}")

    def health(self) -> None:
        query = f"list-type=2&max-keys=1&prefix={quote(self.prefix, safe='')}"
        try:
            answer = self.client.call("GET", self._url(query=query))
        except AwsError as exc:
            raise StorageError(f"s3://{self.bucket} is not reachable: {exc}") from exc
        _check(answer, f"reach s3://{self.bucket}")

    def duckdb_uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    def duckdb_secret(self) -> dict[str, str] | None:
        """Stats and compaction keep the boto3 backend (`S3Storage.duckdb_secret`)."""
        raise StorageError("the standard-library S3 client is for collecting; read stats through S3Storage")


def _error(answer: Response) -> tuple[str, str]:
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(answer.body)
    except ET.ParseError:
        return str(answer.status), ""
    error = root if root.tag == "Error" else root.find("Error")
    if error is None:
        return str(answer.status), ""
    return error.findtext("Code") or str(answer.status), error.findtext("Message") or ""


def _check(answer: Response, what: str) -> None:
    if answer.status >= 300:
        code, message = _error(answer) if answer.body else (str(answer.status), "")
        raise StorageError(f"cannot {what}: {answer.status} {code} {message}".rstrip())

"""moto's server on a loopback port, with two additions a test needs: it counts the
requests it serves (by service and operation, the units AWS bills), and it can make
Firehose fail chosen records of the next PutRecordBatch calls, answering as Firehose
does (`FailedPutCount` and an `ErrorCode` per failed record) without passing those
records on, or refuse whole calls."""

from __future__ import annotations

import base64
import io
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from tests.conftest import free_port

Environ = dict[str, Any]


def operation(environ: Environ) -> str:
    """'firehose:PutRecordBatch', 's3:PutObject', ... for a request."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return f"{target.split('_')[0].lower()}:{target.rpartition('.')[2]}"
    method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    has_key = path.strip("/").count("/") >= 1
    if method == "GET":
        return "s3:GetObject" if has_key else ("s3:ListObjectsV2" if "list-type" in query else "s3:GetBucket")
    if method == "PUT":
        return "s3:PutObject" if has_key else "s3:CreateBucket"
    if method == "POST" and "delete" in query:
        return "s3:DeleteObjects"
    return f"s3:{method.title()}{'Object' if has_key else 'Bucket'}"


class CountingMoto:
    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.counts: Counter[str] = Counter()
        self.objects: Counter[str] = Counter()  # "s3:PutObject:events" -> n (bucket/prefix/<this>/...)
        self.firehose_records = 0
        self.firehose_bytes: list[int] = []  # each accepted record's size
        self.fail_records: list[set[int]] = []  # per coming PutRecordBatch: record indexes to fail
        self.refuse: tuple[int, str] | None = None  # (status, error type) for every Firehose call
        self.lock = threading.Lock()

    def __call__(self, environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        op = operation(environ)
        with self.lock:
            self.counts[op] += 1
            if op in ("s3:PutObject", "s3:GetObject"):
                # What was written or read: events/, incoming/, _salts/, _meta/, _locks/
                parts = environ.get("PATH_INFO", "").strip("/").split("/")
                self.objects[f"{op}:{parts[2] if len(parts) > 3 else parts[-1]}"] += 1
        if op.startswith("firehose:") and self.refuse is not None:
            status, kind = self.refuse
            body = json.dumps({"__type": kind, "message": "refused by the test"}).encode()
            start_response(f"{status} Refused", [("Content-Type", "application/x-amz-json-1.1"),
                                                 ("Content-Length", str(len(body)))])
            return [body]
        if op != "firehose:PutRecordBatch":
            return self.app(environ, start_response)
        return self._put_record_batch(environ, start_response)

    def _put_record_batch(self, environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
        with self.lock:
            failing = self.fail_records.pop(0) if self.fail_records else set()
        records = request["Records"]
        passed = [r for i, r in enumerate(records) if i not in failing]
        with self.lock:
            self.firehose_records += len(passed)
            self.firehose_bytes += [len(base64.b64decode(r["Data"])) for r in passed]
        if not passed:
            moto_answer: dict[str, Any] = {"RequestResponses": []}
        else:
            body = json.dumps({**request, "Records": passed}).encode()
            environ = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
            status: list[str] = []
            chunks = self.app(environ, lambda s, h, *a: status.append(s))
            moto_answer = json.loads(b"".join(chunks))
            assert status[0].startswith("200"), (status, moto_answer)
        accepted = iter(moto_answer["RequestResponses"])
        responses = [{"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."}
                     if i in failing else next(accepted) for i in range(len(records))]
        body = json.dumps({"FailedPutCount": len(failing & set(range(len(records)))), "Encrypted": False,
                           "RequestResponses": responses}).encode()
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    def reset_counts(self) -> None:
        with self.lock:
            self.counts.clear()
            self.objects.clear()
            self.firehose_records = 0
            self.firehose_bytes = []


class CountingMotoServer(ThreadedMotoServer):
    """`ThreadedMotoServer` with `CountingMoto` in front of the backends."""

    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=free_port(), verbose=False)
        self.counter = CountingMoto(DomainDispatcherApplication(create_backend_app))
        self.endpoint = f"http://127.0.0.1:{self._port}"

    def _server_entry(self) -> None:
        self._server = make_server(self._ip_address, self._port, self.counter, True,
                                   request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()

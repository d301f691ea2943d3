"""A baseline of the ingest benchmark: the simplest durable collector. FastAPI that
parses the JSON, appends the body to one file and fsyncs it on the event loop before it
answers 202, served by the same uvicorn as the collector. Durable, but every request
pays its own fsync and waits behind everyone else's."""

from __future__ import annotations

import os

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()
_fd = os.open(os.environ.get("NAIVE_LOG", "naive-events.jsonl"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


@app.post("/collect", status_code=202)
async def collect(request: Request) -> JSONResponse:
    body = await request.body()
    document = orjson.loads(body)
    os.write(_fd, body + b"\n")
    os.fsync(_fd)
    return JSONResponse({"accepted": len(document["events"])}, status_code=202)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}

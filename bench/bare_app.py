"""The baseline of the ingest benchmark: FastAPI that only parses the JSON and answers
202, served by the same uvicorn as the collector."""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()


@app.post("/collect", status_code=202)
async def collect(request: Request) -> JSONResponse:
    document = orjson.loads(await request.body())
    return JSONResponse({"accepted": len(document["events"])}, status_code=202)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}

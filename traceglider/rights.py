"""Data-subject rights over HTTP: the site owner erases one visitor's events (GDPR
Art. 17), as `traceglider forget` does, behind the API token."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request

from traceglider.config import Settings
from traceglider.errors import BadRequest, StorageError, Unavailable
from traceglider.sites import normalize_site
from traceglider.spool.erase import erase_from_quarantine
from traceglider.storage.base import Storage
from traceglider.storage.forget import forget_visitor
from traceglider.storage.lock import LockBusy
from traceglider.types import Sink
from traceglider.web import check_bearer

FORGET_WAIT_SECONDS = 60  # a compaction takes seconds; longer, the client retries


def rights_router(settings: Settings, storage: Storage, sink: Sink) -> APIRouter:
    router = APIRouter(tags=["data rights"])

    @router.post("/api/v1/forget", summary="Erase every event of one visitor",
                 responses={400: {}, 401: {}, 503: {}})
    async def forget(request: Request, visitor_id: str, site: str | None = None) -> dict[str, Any]:
        check_bearer(settings, request)
        visitor_id = visitor_id.strip()
        if not visitor_id or len(visitor_id) > 200:
            raise BadRequest("visitor_id: required, at most 200 characters")
        site = normalize_site(site, "site") if site else None
        if settings.mode != "server":
            # the collector function may not delete events (least privilege)
            raise Unavailable("erasure needs delete rights the collector function does not have: run "
                              "`traceglider forget` with the compaction function's rights", retry_after=3600)
        # Events still in the spool would land after the erasure: deliver them first.
        # Within TG_STORAGE_TIMEOUT: a flush waits for the one in progress, and each
        # has storage calls of that bound, so a hung store could hold this twice as long.
        try:
            flushed = await asyncio.wait_for(asyncio.to_thread(sink.flush), settings.storage_timeout)
        except TimeoutError:
            flushed = False  # the flush goes on in its thread; the spool keeps the events
        if not flushed:
            raise Unavailable("storage is unavailable; nothing was erased, retry later")
        try:
            report = await asyncio.to_thread(forget_visitor, storage, visitor_id, None, site, FORGET_WAIT_SECONDS)
        except LockBusy as exc:
            raise Unavailable(f"{exc}; nothing was erased", retry_after=60) from None
        except StorageError as exc:
            raise Unavailable(f"storage failed during the erasure ({exc}); run it again", retry_after=60) from None
        spool = getattr(sink, "directory", None)
        quarantined = await asyncio.to_thread(erase_from_quarantine, spool, visitor_id) if spool else 0
        return {**asdict(report), "quarantined_rows_removed": quarantined, "summary": report.summary()}

    return router

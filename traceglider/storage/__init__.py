"""Storage backends behind one small interface; `open_storage` picks one from settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from traceglider.storage.base import ObjectInfo, Storage

if TYPE_CHECKING:
    from traceglider.config import Settings

__all__ = ["ObjectInfo", "Storage", "open_storage"]


def open_storage(settings: Settings) -> Storage:
    url: str = settings.storage
    if url.startswith("s3://"):
        from traceglider.storage.s3 import S3Storage

        return S3Storage(url, endpoint_url=settings.s3_endpoint_url, timeout=settings.storage_timeout)
    from traceglider.storage.local import LocalStorage

    return LocalStorage(url)

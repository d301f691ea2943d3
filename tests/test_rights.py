"""The site owner erases one visitor over HTTP; events still spooled are included."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.helpers import BROWSER_UA, batch, dataset_ids
from traceglider.app import create_app
from traceglider.config import load
from traceglider.ingest.enrich.identity import VisitorCookies

ALICE, BOB = "A" * 22, "B" * 22


def cookie(client: TestClient, visitor: str) -> str:
    """The cookie header of a visitor whose cookie this collector issued."""
    return f"tg_vid={VisitorCookies(client.app.state.settings).issue(visitor)}"  # type: ignore[attr-defined]


def test_forget_erases_a_visitor_including_events_still_in_the_spool(tmp_path: Path) -> None:
    settings = load(env={"TG_STORAGE": str(tmp_path / "data"), "TG_API_TOKEN": "owner-token",
                         "TG_FLUSH_SECONDS": "3600", "TG_SITES": "example.com"})
    with TestClient(create_app(settings), headers={"user-agent": BROWSER_UA}) as client:
        for visitor, ids in ((ALICE, ["a1", "a2"]), (BOB, ["b1"])):
            client.cookies.clear()
            response = client.post("/collect", json=batch("example.com", ids),
                                   headers={"cookie": cookie(client, visitor)})
            assert response.status_code == 202
        assert dataset_ids(str(tmp_path / "data")) == []  # all still in the spool

        assert client.post("/api/v1/forget", params={"visitor_id": ALICE}).status_code == 401
        auth = {"authorization": "Bearer owner-token"}
        assert client.post("/api/v1/forget", params={"visitor_id": " "}, headers=auth).status_code == 400
        response = client.post("/api/v1/forget", params={"visitor_id": ALICE}, headers=auth)
        assert response.status_code == 200, response.text
        assert response.json()["rows_removed"] == 2
        assert sorted(dataset_ids(str(tmp_path / "data"))) == ["b1"]


def test_forget_erases_a_visitor_from_quarantined_spool_segments(tmp_path: Path) -> None:
    from traceglider.spool.wal import frame

    settings = load(env={"TG_STORAGE": str(tmp_path / "data"), "TG_API_TOKEN": "owner-token"})
    bad = settings.spool_path / "bad"
    bad.mkdir(parents=True)
    (bad / "seg.wal").write_bytes(frame(b'{"event_id": "a9", "visitor_id": "' + ALICE.encode() + b'"}'))
    with TestClient(create_app(settings)) as client:
        response = client.post("/api/v1/forget", params={"visitor_id": ALICE},
                               headers={"authorization": "Bearer owner-token"})
        assert response.status_code == 200, response.text
        assert response.json()["quarantined_rows_removed"] == 1
    assert not (bad / "seg.wal").exists()


def test_forget_on_lambda_says_to_use_the_command(tmp_path: Path) -> None:
    settings = load(env={"TG_STORAGE": str(tmp_path / "data"), "TG_API_TOKEN": "owner-token", "TG_MODE": "lambda"})
    with TestClient(create_app(settings)) as client:
        response = client.post("/api/v1/forget", params={"visitor_id": ALICE},
                               headers={"authorization": "Bearer owner-token"})
        assert response.status_code == 503 and "traceglider forget" in response.json()["error"]
    assert not list((tmp_path / "data").glob("_locks/*"))  # no lock taken


def test_a_storage_failure_during_erasure_answers_503(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from traceglider.errors import StorageError
    from traceglider.storage.local import LocalStorage

    settings = load(env={"TG_STORAGE": str(tmp_path / "data"), "TG_API_TOKEN": "owner-token"})
    storage = LocalStorage(tmp_path / "data")
    with TestClient(create_app(settings, storage), headers={"user-agent": BROWSER_UA}) as client:
        client.post("/collect", json=batch("example.com", ["a1"]), headers={"cookie": cookie(client, ALICE)})

        def refuse(keys: list[str]) -> None:
            raise StorageError("AccessDenied")

        monkeypatch.setattr(storage, "delete", refuse)
        response = client.post("/api/v1/forget", params={"visitor_id": ALICE},
                               headers={"authorization": "Bearer owner-token"})
        assert response.status_code == 503 and "run it again" in response.json()["error"]

"""Local disk storage as a fresh server meets it: directories that do not exist yet,
and a storage path reached through a symlink."""

from __future__ import annotations

from pathlib import Path

from traceglider.storage.local import LocalStorage


def test_a_root_whose_parent_directories_do_not_exist_is_made_on_the_first_write(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "srv" / "analytics" / "tg-data")
    assert storage.put("events/site=a.example/date=2026-11-01/one.parquet", b"1")
    assert [o.key for o in storage.list("events/")] == ["events/site=a.example/date=2026-11-01/one.parquet"]


def test_deleting_the_last_file_of_a_directory_removes_it_through_a_symlinked_root(tmp_path: Path) -> None:
    (tmp_path / "disk").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "disk")
    storage = LocalStorage(tmp_path / "link" / "data")
    storage.put("events/site=a.example/date=2026-11-01/one.parquet", b"1")
    storage.put("events/site=a.example/date=2026-11-02/two.parquet", b"2")
    storage.delete(["events/site=a.example/date=2026-11-01/one.parquet"])
    assert sorted(p.name for p in (tmp_path / "disk" / "data" / "events" / "site=a.example").iterdir()) == [
        "date=2026-11-02"]
    storage.delete(["events/site=a.example/date=2026-11-02/two.parquet"])
    assert not (tmp_path / "disk" / "data" / "events").exists()
    assert (tmp_path / "disk" / "data").is_dir()  # the root itself stays

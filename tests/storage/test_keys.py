"""Values become path components only through one check that fits every backend."""

from __future__ import annotations

import pytest

from traceglider.sites import MAX_SITE
from traceglider.storage.keys import MAX_COMPONENT_BYTES, InvalidKey, checked_key, path_component
from traceglider.storage.layout import object_key, partition_prefix


def test_the_longest_site_the_edge_accepts_is_one_file_name():
    assert len("site=") + MAX_SITE == MAX_COMPONENT_BYTES
    assert partition_prefix("a" * (MAX_SITE - 4) + ".com", "2026-12-01").count("/") == 3


@pytest.mark.parametrize("value", ["", ".", "..", "a/b", "a\\b", "a\x00b", "a\nb", "a*", "a?", "a" * 251])
def test_values_that_cannot_be_one_safe_name_are_refused(value):
    with pytest.raises(InvalidKey):
        path_component(value, "site")


def test_a_key_longer_than_s3_allows_is_refused():
    with pytest.raises(InvalidKey):
        checked_key("events/" + "a/" * 600)
    with pytest.raises(InvalidKey):
        object_key("example.com", "2026-12-01", "x" * 300)
    assert object_key("example.com", "2026-12-01", "seg") == "events/site=example.com/date=2026-12-01/seg.parquet"

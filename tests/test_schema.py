"""The schema's shared definitions: what an interaction is, in one place."""

from __future__ import annotations

from traceglider.ingest.request import EVENT_TYPES
from traceglider.schema import INTERACTION_TYPES, INTERACTIONS_SQL
from traceglider.stats import metrics
from traceglider.storage import visits_sql


def test_interactions_are_event_types_the_collector_takes_and_one_sql_list() -> None:
    assert set(INTERACTION_TYPES) < set(EVENT_TYPES) and "pageview" not in INTERACTION_TYPES
    assert INTERACTIONS_SQL == "('custom','click','form_submit')"
    # the stats metrics and the visits dataset read this one definition, not copies
    assert metrics.INTER_SQL is INTERACTIONS_SQL
    assert visits_sql.INTERACTIONS_SQL is INTERACTIONS_SQL and not hasattr(visits_sql, "INTERACTIONS")

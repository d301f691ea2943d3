"""The visit rule, shared by the collector's session ids, compaction's visit ids and
the stats: a leaf, so every layer can use it without importing another's modules."""

from __future__ import annotations

# A visit ends after this long without an event from its visitor.
VISIT_TIMEOUT_MINUTES = 30

# The event types that count as interactions (events, and a visit's `interactions`:
# a visit with one is no bounce): what the visits dataset, the stats metrics and the
# DDL's readers all mean by it. Here, not in `schema`, so the stats need no pyarrow.
INTERACTION_TYPES = ("custom", "click", "form_submit")
INTERACTIONS_SQL = "(" + ",".join(f"'{kind}'" for kind in INTERACTION_TYPES) + ")"  # constants, not client data

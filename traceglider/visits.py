"""The visit rule, shared by the collector's session ids, compaction's visit ids and
the stats: a leaf, so every layer can use it without importing another's modules."""

from __future__ import annotations

# A visit ends after this long without an event from its visitor.
VISIT_TIMEOUT_MINUTES = 30

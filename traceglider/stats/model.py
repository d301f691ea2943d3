"""The stats question every front end builds: metrics over a site and time range,
grouped by dimensions, filtered by a tree of conditions, ordered and paginated.

It is rich enough for Plausible's Stats API v2 (filters as `and` / `or` / `not` over
conditions with `is`, `is_not`, `contains`, `contains_not`, `matches`, `matches_not`,
each optionally case-insensitive; dimensions `event:*`, `visit:*`, `time:*`,
`event:props:<name>`; `order_by`; `limit`/`offset`); v1 maps onto it
(`stats/service.py`). The chain: Question -> `plan.Sources` (which files) ->
`sql.build` (SQL text, bound values) -> `Engine.fetch` -> rows -> the front end's
shape. A leaf of this module: it imports nothing of the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# `matches_wildcard`: v1's `==` with `*` (within a path segment) and `**` (across).
OPERATORS = ("is", "is_not", "contains", "contains_not", "matches", "matches_not",
             "matches_wildcard", "matches_wildcard_not")
TIME_DIMENSIONS = {"time:hour": "hour", "time:day": "day", "time:week": "week", "time:month": "month"}


@dataclass(frozen=True)
class Condition:
    """A leaf: `dimension` compared with any of `values` (a missing value is '')."""
    op: str
    dimension: str
    values: tuple[str, ...]
    case_insensitive: bool = False

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ValueError(f"unknown operator {self.op}")

    @property
    def negated(self) -> bool:
        return self.op.endswith("_not")


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


Node = Condition | And | Or | Not


@dataclass(frozen=True)
class Question:
    site: str
    start: datetime  # inclusive, naive UTC
    end: datetime  # exclusive, naive UTC
    metrics: tuple[str, ...]
    dimensions: tuple[str, ...] = ()
    filters: Node | None = None
    order_by: tuple[tuple[str, str], ...] = ()  # (metric or dimension, "asc" | "desc")
    limit: int | None = None
    offset: int = 0

    def with_filters(self, filters: Node | None) -> Question:
        return Question(self.site, self.start, self.end, self.metrics, self.dimensions, filters,
                        self.order_by, self.limit, self.offset)

    def with_metrics(self, metrics: tuple[str, ...]) -> Question:
        return Question(self.site, self.start, self.end, metrics, self.dimensions, self.filters,
                        self.order_by, self.limit, self.offset)

    @property
    def day_aligned(self) -> bool:
        """Both ends at midnight: visit rows answer event counts of the range exactly."""
        return all(t.hour == t.minute == t.second == t.microsecond == 0 for t in (self.start, self.end))


def conditions(node: Node | None) -> list[Condition]:
    """Every leaf of a filter tree."""
    if node is None:
        return []
    if isinstance(node, Condition):
        return [node]
    if isinstance(node, Not):
        return conditions(node.child)
    return [c for child in node.children for c in conditions(child)]


def all_of(nodes: list[Node]) -> Node | None:
    """The conjunction of `nodes` (None when empty)."""
    nodes = [n for n in nodes if n is not None]
    if not nodes:
        return None
    return nodes[0] if len(nodes) == 1 else And(tuple(nodes))


def without(node: Node | None, dimension: str) -> Node | None:
    """The tree with the top-level conditions on `dimension` removed (v1's goal filter
    is dropped for a conversion rate's denominator)."""
    if node is None:
        return None
    if isinstance(node, Condition):
        return None if node.dimension == dimension else node
    if isinstance(node, And):
        return all_of([c for c in (without(c, dimension) for c in node.children) if c is not None])
    return node

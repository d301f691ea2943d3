"""Waiting for the dashboard page to be at rest, for the browser tests that read it."""

from __future__ import annotations

from typing import Any

# The page marks its body aria-busy from the start of a refresh until the headline,
# the chart and every panel are drawn; a card redrawn alone (a tab) and the details
# view say "loading" while they are; the chart exists once a first view is drawn.
AT_REST = ("() => !document.body.hasAttribute('aria-busy')"
           " && document.querySelectorAll('[data-panel].loading, .stat.loading, #details-rows.loading').length === 0"
           " && !!document.querySelector('#chart svg')")


def settle(page: Any) -> None:
    """Return once the view is drawn, all of it. Not `wait_for_load_state("networkidle")`:
    once a page has reached that state it returns at once, whatever is still in flight."""
    page.wait_for_function(AT_REST)

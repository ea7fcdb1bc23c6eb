"""Evaluate: laid out by :mod:`sonotag_app.evaluate_page` (a page file stays a one-line shim)."""

from sonotag_app import evaluate_page

evaluate_page.render()

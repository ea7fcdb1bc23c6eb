"""Analyze: laid out by :mod:`sonotag_app.analyze_page` (a page file stays a one-line shim)."""

from sonotag_app import analyze_page

analyze_page.render()

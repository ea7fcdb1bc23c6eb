"""Compare: laid out by :mod:`sonotag_app.compare_page` (a page file stays a one-line shim)."""

from sonotag_app import compare_page

compare_page.render()

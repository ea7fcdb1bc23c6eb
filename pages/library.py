"""Library: laid out by :mod:`sonotag_app.library_page` (a page file stays a one-line shim)."""

from sonotag_app import library_page

library_page.render()

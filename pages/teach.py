"""Teach: laid out by :mod:`sonotag_app.teach_page` (a page file stays a one-line shim)."""

from sonotag_app import teach_page

teach_page.render()

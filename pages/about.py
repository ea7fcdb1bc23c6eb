"""About / System: laid out by :mod:`sonotag_app.about_page` (a page file stays a one-line shim)."""

from sonotag_app import about_page

about_page.render()

"""One exception family per pipeline stage, each with a message a user can act on.

The UI shows ``str(exc)``; the CLI prints it on one line and exits non-zero.
Tracebacks go to the log only.
"""

from __future__ import annotations


class SonoTagError(Exception):
    """Base class: every error a user should see, never a traceback."""


class SourceError(SonoTagError):
    """The input could not be turned into a local audio file (bad link, refused site, download failure)."""


class DecodeError(SonoTagError):
    """The file is not decodable audio (corrupt, empty, truncated, not audio)."""


class ModelError(SonoTagError):
    """The OpenFLAM model could not be loaded or run (missing weights, bad checkpoint)."""


class LimitError(SonoTagError):
    """The request exceeds a configured limit (duration, labels, label length)."""


class ConfigError(SonoTagError):
    """A setting, option or format is not valid (a bad value, an unknown choice)."""


class ExportError(SonoTagError):
    """A result could not be written where the user asked (no such directory, a folder in
    the way, a read-only place)."""

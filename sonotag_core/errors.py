"""One exception family per thing that can fail, each with a message a user can act on.

The UI shows ``str(exc)``; the CLI prints it on one line and exits non-zero.
Tracebacks go to the log only. A family names what failed, so a caller that handles one
(``except StoreError``: carry on without the Library) never hides another.
"""

from __future__ import annotations


class SonoTagError(Exception):
    """Base class: every error a user should see, never a traceback."""


class SourceError(SonoTagError):
    """The input could not be turned into a local audio file (no such file, bad link,
    refused site, download failure, an unknown example)."""


class DecodeError(SonoTagError):
    """The file is not decodable audio (corrupt, empty, truncated, not audio)."""


class ModelError(SonoTagError):
    """The OpenFLAM model could not be loaded or run (missing weights, bad checkpoint)."""


class LimitError(SonoTagError):
    """The request exceeds a configured limit (duration, labels, label length, rate)."""


class ConfigError(SonoTagError):
    """A setting, option or format is not valid (a bad ``SONOTAG_*`` value, an unknown
    export format, an export name that is not a plain file name)."""


class TruthError(SonoTagError):
    """Ground truth that cannot be used to evaluate: wrong columns, bad or reversed
    times, times past the audio's end, files that are not in the evaluation, no rows."""


class ExportError(SonoTagError):
    """A result could not be written where the user asked (no such directory, a folder in
    the way, a read-only place)."""


class StoreError(SonoTagError):
    """The result store could not be read or written (disk full, damaged database)."""


class NotFoundError(StoreError):
    """The store works but holds no such entry (an analysis id that was deleted or comes
    from another server). A :class:`StoreError` because it is the Library's answer and
    ``except StoreError`` around a Library step should cover it; its own class so a
    front end can tell "gone" (say so, offer to analyse again) from "damaged" (warn,
    carry on without the Library). Not a :class:`SourceError`: nothing about the audio
    failed."""


class DetectorError(ConfigError):
    """A detector (a label refined from reviews) that cannot be used: a card that is not
    SonoTag's JSON, made for another checkpoint, or with damaged weights (wrong shape,
    not finite, out of range); a refine with no positive or no negative example. A
    :class:`ConfigError` because a front end handles it the same way (say what is wrong,
    carry on); its own class so one can tell a bad card from a bad setting."""

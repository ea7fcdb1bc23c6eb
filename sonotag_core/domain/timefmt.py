"""Times as people read them: a moment as a clock (``m:ss.ss`` under an hour,
``h:mm:ss.ss`` from an hour on), a length in words ("12 min", "3 h 01 min").

The one place every front end formats time: the page (axes, tooltips, the event table),
the player's readout (``frontend/workbench.js`` writes the same clock), the CLI's tables
and every limit message, so a time reads the same everywhere.
"""

from __future__ import annotations


def clock(seconds: float, decimals: int = 2, *, hours: bool = False) -> str:
    """``75.5`` -> ``"1:15.50"``; ``3725`` -> ``"1:02:05.00"``; ``hours=True`` always
    prints the hour (``"0:01:15.50"``), for columns that must line up."""
    scale = 10**decimals
    units = int(round(max(float(seconds), 0.0) * scale))
    h, units = divmod(units, 3600 * scale)
    m, units = divmod(units, 60 * scale)
    whole, frac = divmod(units, scale)
    tail = f"{whole:02d}" + (f".{frac:0{decimals}d}" if decimals else "")
    return f"{h}:{m:02d}:{tail}" if h or hours else f"{m}:{tail}"


def duration(seconds: float) -> str:
    """A length in words, for limits and tables: "45 s", "12 min", "3 h", "4 h 05 min"."""
    total = int(round(seconds))
    if total < 60:
        return f"{total} s"
    hours, minutes = divmod(total // 60, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h" if not minutes else f"{hours} h {minutes:02d} min"

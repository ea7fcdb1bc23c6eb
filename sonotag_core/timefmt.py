"""Times as people read them: ``m:ss.ss`` under an hour, ``h:mm:ss.ss`` from an hour on.

One formatter for the page (axes, tooltips, the event table) and the player's readout
(``frontend/workbench.js`` writes the same form), so a time reads the same everywhere.
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

"""Domain: the numbers and their meaning, numpy and pandas only (no torch, no I/O).

windows (the time grid: 10-s windows, 32 frames of 0.3125 s), embeddings (what the
encoder keeps), timeline (frame probabilities on one axis), events (thresholds, merging),
labels, review (verdicts on events), report (what exports write), compare, progress,
timefmt. Everything above builds on these; they import nothing above them.
"""

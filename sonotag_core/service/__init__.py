"""Service: the one place the run rules live; the CLI, the dashboard and batch call it.

api (``Service``: resolve a source, reuse or encode embeddings, save with the settings
used, open, relabel, report, search), analysis (one audio end to end), library (stored
results: reuse, open, delete), search (a sound across the whole Library).
"""

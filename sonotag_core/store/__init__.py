"""Store: the SQLite result store (sources, kept audio, embeddings, analyses, reviews).

``database.Store`` is the one entry (import it from there); it is composed of one module
per concern (analyses, embeddings, media, reviews, calibrations, attachments) over one
connection (``connection``) and one migration list (``schema``). It stores and finds; it
does not parse links, run the model or decide policy (that is service/).
"""

"""Store: the SQLite result store (sources, kept audio, embeddings, analyses, reviews).

database holds the schema, its migrations and the row types. It stores and finds; it
does not parse links, run the model or decide policy (that is service/).
"""

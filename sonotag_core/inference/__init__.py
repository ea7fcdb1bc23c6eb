"""Inference: the OpenFLAM model and everything that runs it; the only torch importers.

model (loading the real openflam code offline-capable), encode (audio windows ->
embeddings, the expensive step), scoring (text encodings cached by text, frame
probabilities as openflam computes them), scheduler (one line for the CPU, rate limits),
embedding_cache (recent embeddings in memory).
"""

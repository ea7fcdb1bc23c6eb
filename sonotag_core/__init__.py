"""SonoTag core: find when sounds happen in audio, from words alone (OpenFLAM).

Data flows one way: sources -> decode -> windows -> model embeddings ->
scoring (frame probabilities) -> timeline/events -> exports. Nothing here imports Streamlit.
"""

__version__ = "0.1.0"

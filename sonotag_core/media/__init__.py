"""Media: a file, an upload or a link -> checked, fetched and decoded 48 kHz mono audio.

sources (what a user gives, links checked before any request), netguard (no request
leaves for a private address), decode (ffmpeg, streamed), examples, overview (the
waveform and spectrogram the player draws), workdirs (scratch space). Imports only
domain/ and the top-level basics: no model, no store.
"""

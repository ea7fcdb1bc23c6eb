"""Dashboard view logic without Streamlit: what pages/ and ui_*.py show, testable alone.

charts (Altair), share (links that reopen a view), presets, workbench_data (the player's
payload), media_links (signed audio URLs the player seeks in), about.
"""

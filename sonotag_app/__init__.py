"""The Streamlit dashboard: one module per page (``*_page.py``; Analyze in three parts,
``analyze_inputs`` / ``analyze_run`` / ``analyze_workbench``), what every page shares
(``context``: settings, the model and its caches, the store, the visitor, session keys),
and what the server entry wraps the app in (``server``). It reaches the core through the
service, the dashboard helpers, domain values and exports only (tests/test_layers.py)."""

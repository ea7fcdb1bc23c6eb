"""SonoTag dashboard entry point: navigation only, no logic."""

import streamlit as st

st.set_page_config(page_title="SonoTag", page_icon=":material/graphic_eq:", layout="wide")
st.navigation(
    [
        st.Page("pages/analyze.py", title="Analyze", icon=":material/graphic_eq:", default=True),
        st.Page("pages/library.py", title="Library", icon=":material/library_music:"),
        st.Page("pages/compare.py", title="Compare", icon=":material/compare:"),
        st.Page("pages/evaluate.py", title="Evaluate", icon=":material/fact_check:"),
        st.Page("pages/teach.py", title="Teach", icon=":material/school:"),
        st.Page("pages/about.py", title="About / System", icon=":material/info:"),
    ]
).run()

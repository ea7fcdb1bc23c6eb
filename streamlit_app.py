"""SonoTag dashboard entry point: navigation only, no logic."""

import streamlit as st

st.set_page_config(page_title="SonoTag", page_icon=":material/graphic_eq:", layout="wide")
st.navigation(
    [
        st.Page("pages/analyze.py", title="Analyze", icon=":material/graphic_eq:", default=True),
        st.Page("pages/about.py", title="About / System", icon=":material/info:"),
    ]
).run()

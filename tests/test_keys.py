"""Session keys live in one typed table (sonotag_app/keys.py): no widget takes a literal
key, and no module reads or writes the session by a literal name."""

from __future__ import annotations

import ast
from pathlib import Path

from sonotag_app.keys import KEYS, SessionKeys

ROOT = Path(__file__).resolve().parent.parent
APP_FILES = sorted((ROOT / "sonotag_app").glob("*.py"))
SESSION_METHODS = {
    "get",
    "pop",
    "setdefault",
    "keys",
    "items",
    "values",
    "clear",
    "update",
    "to_dict",
}


def _literal(node: ast.expr) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def _is_session(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "session_state"


def literal_keys(source: str) -> list[str]:
    """Where a source file spells a session key itself."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            found += [
                f"{node.lineno}: key="
                for kw in node.keywords
                if kw.arg == "key" and _literal(kw.value)
            ]
            if isinstance(node.func, ast.Attribute) and _is_session(node.func.value):
                if node.func.attr in SESSION_METHODS and node.args and _literal(node.args[0]):
                    found.append(f"{node.lineno}: session_state.{node.func.attr}(literal)")
        elif isinstance(node, ast.Subscript) and _is_session(node.value) and _literal(node.slice):
            found.append(f"{node.lineno}: session_state[literal]")
        elif isinstance(node, ast.Attribute) and _is_session(node.value):
            if node.attr not in SESSION_METHODS:
                found.append(f"{node.lineno}: session_state.{node.attr}")
        elif isinstance(node, ast.Compare) and _literal(node.left):
            if any(_is_session(c) for c in node.comparators):
                found.append(f"{node.lineno}: literal in session_state")
    return found


def test_the_finder_finds_each_spelling():
    src = (
        'st.slider("x", key="thr")\nst.button("b", key=f"dl_{n}")\n'
        'st.session_state["a"] = 1\nst.session_state.b = 2\nst.session_state.get("c")\n'
        'if "d" in st.session_state: pass\n'
        "st.slider('ok', key=KEYS.hop)\nst.session_state[KEYS.view]\nst.session_state.get(k)\n"
    )
    assert [f.split(":")[0] for f in literal_keys(src)] == ["1", "2", "3", "4", "5", "6"]


def test_no_app_module_spells_a_session_key():
    found = {f"{p.name}:{hit}" for p in APP_FILES for hit in literal_keys(p.read_text())}
    assert not found, sorted(found)


def test_every_key_in_the_table_is_distinct():
    values = [getattr(KEYS, f) for f in SessionKeys.__dataclass_fields__]
    assert len(values) == len(set(values))

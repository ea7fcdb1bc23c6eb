"""The package layout is the architecture: each layer imports only the layers below it,
torch lives in inference/ alone, Streamlit only in the app, no module cycles, and no
module reaches into another's private names.

Every Python file of the project is in a layer: sonotag_core's sub-packages and top-level
modules, the Streamlit app (``sonotag_app/``), the page shims (``pages/``) and the entry
files at the root (``serve.py``, ``streamlit_app.py``). Imports are read from the source
(every import statement, function-level ones included), so a shortcut through a lazy
import inside a function is caught as well. The README's "How it works" has this table."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("sonotag_core", "sonotag_app")

#: The basics every layer may use: the settings table and what it needs, errors, the
#: quoting of untrusted text, access rules.
BASE = {"errors", "untrusted", "settings", "access", "__init__", "__version__"}
#: layer -> the layers it may import, besides BASE (sonotag_core's sub-packages and
#: top-level modules by name; "app", "pages" and "entry" for the dashboard).
MAY_IMPORT: dict[str, set[str]] = {
    "domain": {"domain"},
    "media": {"domain", "media"},
    "inference": {"domain", "inference"},
    "archive": {"domain", "archive"},
    "store": {"domain", "media", "archive", "store"},
    "service": {"domain", "media", "inference", "archive", "store", "service"},
    "dashboard": {"domain", "media", "store", "dashboard"},
    "batch": {"domain", "media", "inference", "archive", "service", "batch"},
    "testing": {"domain", "inference", "testing"},
    # the top-level modules: the basics use the time grid and the event-parameter table;
    # exports write domain results; the CLI is a front end and may use every core layer
    "base": {"domain"},
    "exports": {"domain"},
    "cli_args": {"domain"},
    "cli": {
        "domain",
        "media",
        "inference",
        "store",
        "service",
        "dashboard",
        "exports",
        "archive",
        "cli_args",
        "cli_evaluate",
        "cli_batch",
        "cli_teach",
    },
    "cli_evaluate": {"domain", "service", "exports", "cli_args"},
    "cli_batch": {"domain", "inference", "archive", "service", "batch", "exports", "cli_args"},
    "cli_teach": {"domain", "inference", "service", "exports"},
    # the dashboard: through the service (never the store, the model or the media
    # directly), the Streamlit-free dashboard helpers, domain values and exports
    "app": {"domain", "service", "dashboard", "exports", "app"},
    "pages": {"app"},
    "entry": {"app"},
}
#: third-party packages only some layers may import
ONLY_IN = {
    "torch": {"inference", "testing"},
    "openflam": {"inference", "testing"},
    "streamlit": {"app", "pages", "entry"},
}
ENTRY_FILES = ("serve.py", "streamlit_app.py")


def _files(root: Path = ROOT) -> list[Path]:
    files = [*root.glob("pages/*.py"), *(root / f for f in ENTRY_FILES if (root / f).exists())]
    for package in PACKAGES:
        files += (root / package).rglob("*.py")
    return sorted(files)


def _layer(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root)
    if rel.parts[0] == "sonotag_app":
        return "app"
    if rel.parts[0] == "pages":
        return "pages"
    if len(rel.parts) == 1:
        return "entry"
    inner = rel.parts[1:]
    if len(inner) > 1:
        return inner[0]
    return "base" if rel.stem in BASE else rel.stem


def _module(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, root: Path = ROOT) -> list[tuple[int, str, str | None]]:
    """(line, absolute dotted module, imported name or None) for every import."""
    tree = ast.parse(path.read_text(), str(path))
    module = _module(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[int, str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            out += [(node.lineno, target, a.name) for a in node.names]
    return out


def _target_layer(module: str, name: str | None, root: Path = ROOT) -> str | None:
    """The layer of an imported project module (``from pkg import mod`` names mod)."""
    parts = module.split(".")
    if parts[0] == "sonotag_app":
        return "app"
    if parts[0] == "pages":
        return "pages"
    if parts[0] != "sonotag_core":
        return None
    if len(parts) == 1:  # from sonotag_core import x: x is the module
        parts = [parts[0], name or "__init__"]
    if (root / "sonotag_core" / parts[1]).is_dir():
        return parts[1]
    return "base" if parts[1] in BASE else parts[1]


def crossings(path: Path, root: Path = ROOT) -> list[str]:
    """Every import of ``path`` that its layer may not make."""
    layer = _layer(path, root)
    allowed = MAY_IMPORT[layer]
    wrong = []
    for line, module, name in _imports(path, root):
        top = module.split(".")[0]
        target = _target_layer(module, name, root)
        if top in ONLY_IN and layer not in ONLY_IN[top]:
            wrong.append(f"{line}: {module} (only in {', '.join(sorted(ONLY_IN[top]))})")
        elif target is not None and target != "base" and target not in allowed:
            wrong.append(f"{line}: {module} ({layer} may not import {target})")
        elif target == "base" and layer in ("pages", "entry"):
            wrong.append(f"{line}: {module} ({layer} goes through the app)")
    return wrong


def private_reaches(path: Path, root: Path = ROOT) -> list[str]:
    """``from other_module import _private``: a name kept private by its own module."""
    return [
        f"{line}: {module}.{name}"
        for line, module, name in _imports(path, root)
        if name
        and name.startswith("_")
        and not name.startswith("__")
        and module.split(".")[0] in (*PACKAGES, "pages")
    ]


def cycles(files: Iterable[Path], root: Path = ROOT) -> list[list[str]]:
    """The project's import cycles (strongly connected modules, lazy imports included)."""
    files = list(files)
    modules = {_module(p, root): p for p in files}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for _, module, imported in _imports(path, root):
            full = f"{module}.{imported}" if imported else module
            targets.add(full if full in modules else module)
        graph[name] = {t for t in targets if t in modules and t != name}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


FILES = _files()


def test_every_file_has_a_layer():
    layers = {_layer(p) for p in FILES}
    assert layers <= set(MAY_IMPORT), layers - set(MAY_IMPORT)
    assert {"domain", "media", "inference", "store", "service", "dashboard", "app"} <= layers
    assert {"pages", "entry"} <= layers


def test_no_loose_modules_at_the_root():
    """The root holds the entry files only: the UI lives in sonotag_app/."""
    loose = {p.name for p in ROOT.glob("*.py")} - set(ENTRY_FILES)
    assert not loose, loose


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_respect_the_layers(path):
    wrong = crossings(path)
    assert not wrong, f"{path.relative_to(ROOT)} reaches across layers:\n" + "\n".join(wrong)


def test_no_module_imports_another_modules_private_names():
    found = {f"{p.relative_to(ROOT)}:{hit}" for p in FILES for hit in private_reaches(p)}
    assert not found, sorted(found)


def test_no_import_cycles():
    assert cycles(FILES) == []


# ---------------------------------------------------------------- the checker can fail


def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for package in PACKAGES:
        (tmp_path / package).mkdir(exist_ok=True)
    return tmp_path


def test_the_checker_sees_a_crossing(tmp_path):
    """A domain module importing the model and torch is reported."""
    root = _plant(
        tmp_path,
        {
            "sonotag_core/domain/bad.py": (
                "def f():\n    from ..inference.model import load_model\n    import torch\n"
            ),
            "sonotag_core/inference/model.py": "",
        },
    )
    wrong = "\n".join(crossings(root / "sonotag_core/domain/bad.py", root))
    assert "domain may not import inference" in wrong
    assert "torch (only in inference, testing)" in wrong


def test_the_checker_sees_the_core_reaching_into_the_app(tmp_path):
    root = _plant(
        tmp_path,
        {
            "sonotag_core/service/bad.py": "import sonotag_app.state\n",
            "sonotag_core/domain/worse.py": "def f():\n    import streamlit as st\n",
            "sonotag_app/state.py": "",
        },
    )
    assert crossings(root / "sonotag_core/service/bad.py", root) == [
        "1: sonotag_app.state (service may not import app)"
    ]
    assert (
        "streamlit (only in app, entry, pages)"
        in crossings(root / "sonotag_core/domain/worse.py", root)[0]
    )


def test_the_checker_sees_a_page_or_the_app_importing_the_store(tmp_path):
    root = _plant(
        tmp_path,
        {
            "pages/bad.py": "from sonotag_core.store.database import Store\n",
            "sonotag_app/library.py": "def f():\n    from sonotag_core.inference import model\n",
            "sonotag_core/store/database.py": "",
            "sonotag_core/inference/model.py": "",
        },
    )
    assert crossings(root / "pages/bad.py", root) == [
        "1: sonotag_core.store.database (pages may not import store)"
    ]
    assert crossings(root / "sonotag_app/library.py", root) == [
        "2: sonotag_core.inference (app may not import inference)"
    ]


def test_the_checker_sees_a_cycle_and_a_private_name(tmp_path):
    root = _plant(
        tmp_path,
        {
            "sonotag_core/domain/a.py": "from sonotag_core.domain.b import _helper\n",
            "sonotag_core/domain/b.py": "def f():\n    from sonotag_core.domain import a\n",
        },
    )
    files = _files(root)
    assert cycles(files, root) == [["sonotag_core.domain.a", "sonotag_core.domain.b"]]
    assert private_reaches(root / "sonotag_core/domain/a.py", root) == [
        "1: sonotag_core.domain.b._helper"
    ]

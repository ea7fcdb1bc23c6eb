"""The package layout is the architecture: each layer of sonotag_core imports only the
layers below it, torch lives in inference/ alone, Streamlit nowhere in the core.

Read from the source (every import statement, function-level ones included), so a
shortcut through a lazy import inside a function is caught as well."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "sonotag_core"

#: The basics every layer may use: the settings table and what it needs, errors, the
#: quoting of untrusted text, access rules.
BASE = {"errors", "untrusted", "settings", "access", "__init__", "__version__"}
#: layer -> the layers (sub-packages of sonotag_core) it may import, besides BASE.
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
    # the top-level modules: the basics use the time grid; exports write domain results;
    # the CLI is a front end and may use every layer
    "base": {"domain"},
    "exports": {"domain"},
    "cli": {
        "domain",
        "media",
        "inference",
        "store",
        "service",
        "dashboard",
        "exports",
        "archive",
        "cli_evaluate",
        "cli_batch",
        "cli_teach",
    },
    "cli_evaluate": {"domain", "service", "exports"},
    "cli_batch": {"domain", "inference", "archive", "service", "batch", "exports"},
    "cli_teach": {"domain", "inference", "service", "exports"},
}
#: third-party packages only some layers may import
ONLY_IN = {"torch": {"inference", "testing"}, "openflam": {"inference", "testing"}}
NEVER = {"streamlit"}


def _layer(path: Path) -> str:
    rel = path.relative_to(CORE)
    if len(rel.parts) > 1:
        return rel.parts[0]
    return "base" if rel.stem in BASE else rel.stem


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute dotted module) for every import in the file."""
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(("sonotag_core", *path.relative_to(CORE).parent.parts))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            if module == "sonotag_core":  # from sonotag_core import x: x is the module
                out += [(node.lineno, f"sonotag_core.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, module))
    return out


def _target_layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "sonotag_core" or len(parts) < 2:
        return None
    if (CORE / parts[1]).is_dir():
        return parts[1]
    return "base" if parts[1] in BASE else parts[1]


CORE_FILES = sorted(CORE.rglob("*.py"))


def test_every_core_file_has_a_layer():
    layers = {_layer(p) for p in CORE_FILES}
    assert layers <= set(MAY_IMPORT), layers - set(MAY_IMPORT)
    assert {"domain", "media", "inference", "store", "service", "dashboard"} <= layers


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_imports_respect_the_layers(path):
    layer = _layer(path)
    allowed = MAY_IMPORT[layer]
    wrong = []
    for line, module in _imports(path):
        top = module.split(".")[0]
        target = _target_layer(module)
        if top in NEVER:
            wrong.append(f"{line}: {module} (never in sonotag_core)")
        elif top in ONLY_IN and layer not in ONLY_IN[top]:
            wrong.append(f"{line}: {module} (only in {', '.join(sorted(ONLY_IN[top]))}/)")
        elif target is not None and target != "base" and target not in allowed:
            wrong.append(f"{line}: {module} ({layer} may not import {target})")
    assert not wrong, f"{path.relative_to(CORE)} reaches across layers:\n" + "\n".join(wrong)


def test_the_checker_sees_a_crossing(tmp_path):
    """The rule can fail: a domain module importing the model is reported."""
    fake = tmp_path / "sonotag_core"
    (fake / "domain").mkdir(parents=True)
    bad = fake / "domain" / "bad.py"
    bad.write_text("def f():\n    from ..inference.model import load_model\n    import torch\n")
    global CORE
    saved, CORE = CORE, fake
    try:
        (fake / "inference").mkdir()
        with pytest.raises(AssertionError) as err:
            test_imports_respect_the_layers(bad)
    finally:
        CORE = saved
    assert "domain may not import inference" in str(err.value)
    assert "torch (only in inference, testing/)" in str(err.value)

"""Attach a batch output to the Library: its items become analyses that list, open,
relabel, review and search like stored ones, while their embeddings stay in the output's
Parquet files (the store keeps only a row per item pointing at them).

Attaching names a folder on the server, so it is the operator's: the CLI, a dashboard
visitor with ``SONOTAG_ADMIN_TOKEN``, or anyone on a ``SONOTAG_ACCESS=shared`` server.
Attaching again after more items finished adds those; detaching removes the analyses and leaves the output as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sonotag_core.access import OPERATOR, AccessError, Viewer
from sonotag_core.archive import BatchError
from sonotag_core.domain.labels import LabelSet
from sonotag_core.store.database import Store
from sonotag_core.untrusted import quoted


@dataclass(frozen=True)
class Attached:
    """What an attach did: the folder, analyses added now and listed in all."""

    out: Path
    added: int
    listed: int


def attach_output(store: Store, out: Path | str, viewer: Viewer | None = None) -> Attached:
    """List the finished items of the batch output ``out`` in the Library. Errors of the
    :class:`BatchError` family say what is wrong with the folder."""
    from sonotag_core.archive.parts import read_items, read_spec, read_window_starts

    _check_operator(viewer, "attach a batch output")
    folder = Path(out).expanduser()
    if not folder.is_dir():
        raise BatchError(f"{quoted(folder)} is not a folder: give a `sonotag batch` -o folder.")
    folder = folder.resolve()
    spec = read_spec(folder)
    items = read_items(folder)
    if not items:
        raise BatchError(f"{quoted(folder)} holds no finished item yet: nothing to attach.")
    starts = read_window_starts(folder)
    missing = [i.key for i in items if i.key not in starts]
    if missing:
        raise BatchError(f"{quoted(folder)} is damaged: {missing[0]} has no embeddings.")
    settings = {**spec.events, "hop_s": spec.hop_s, "batch_output": str(folder)}
    added = store.attach_batch(
        folder,
        ((item, starts[item.key]) for item in items),
        LabelSet(spec.labels, frozenset(spec.negatives)),
        hop_s=spec.hop_s,
        checkpoint_sha256=spec.checkpoint_sha256,
        model_name=spec.model,
        settings=settings,
        owner=OPERATOR,
    )
    listed = next((n for o, n, _ in store.attachments() if o == str(folder)), added)
    return Attached(folder, added, listed)


def detach_output(store: Store, out: Path | str, viewer: Viewer | None = None) -> int:
    """Remove an attached output's analyses from the Library (the files stay)."""
    _check_operator(viewer, "detach a batch output")
    return store.detach_batch(out)


def _check_operator(viewer: Viewer | None, what: str) -> None:
    if viewer is not None and not may_attach(viewer):
        raise AccessError(
            f"Only the operator may {what} (it reads folders on the server): use "
            "`sonotag library attach`, or sign in with SONOTAG_ADMIN_TOKEN."
        )


def may_attach(viewer: Viewer) -> bool:
    """Whether ``viewer`` may attach or detach outputs (see the module doc)."""
    return viewer.sees_all

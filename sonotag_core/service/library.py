"""What the dashboard and the CLI do with the result store around one run: reuse what is
stored, open a stored analysis, keep a new one.

The rules live here, not in the pages: a stored analysis opens only with the checkpoint
that made it (embeddings from another model would give meaningless numbers); a link whose
audio and embeddings are stored is neither downloaded nor encoded again; a run is saved
when its audio is new or the user asked for it, so opening a shared link a hundred times
does not fill the Library with copies. A store that cannot be written (a full disk) never
costs the user the result in front of them: it comes back with a warning instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from sonotag_core.access import OPERATOR_VIEWER, AccessError, Viewer, can_list, check_change
from sonotag_core.domain.embeddings import (
    AudioEmbeddings,
    embedding_key,
    key_checkpoint,
    key_is_fast,
    key_text,
)
from sonotag_core.domain.labels import LabelSet
from sonotag_core.domain.progress import ProgressFn, no_progress
from sonotag_core.errors import ModelError, NotFoundError, SonoTagError
from sonotag_core.inference.embedding_cache import EmbeddingCache
from sonotag_core.inference.model import LoadedModel
from sonotag_core.media.sources import Link, SourceInfo, parse_link
from sonotag_core.service.analysis import embed_source, known_embeddings, save_analysis
from sonotag_core.settings import DEFAULTS, Settings
from sonotag_core.store.database import MEDIA_DIR, AnalysisSummary, MediaUsage, Store, StoreError
from sonotag_core.untrusted import quoted

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True)
class Analysed:
    """One audio ready to score: its source, kept embeddings and where it is stored."""

    source: SourceInfo
    embeddings: AudioEmbeddings
    hop_s: float
    seconds: float  # wall time of this run (near 0 when everything was stored)
    analysis_id: str | None = None  # None when the store could not be written
    labels: LabelSet | None = None  # the labels it was stored with
    warning: str | None = None  # something the user should know (e.g. not saved)
    reused: bool = False  # the embeddings were stored or cached: no audio encoding ran
    unsaved: str | None = None  # why the store could not keep this run (each front end says it)
    settings: Mapping[str, Any] = field(default_factory=dict)  # what it was stored with
    fast: bool = DEFAULTS.fast  # its embeddings were made in fast mode (bf16)


def describe(summary: AnalysisSummary, label_chars: int = 60) -> str:
    """One line naming a stored analysis in pickers: title · labels · when."""
    labels = summary.labels_text
    if len(labels) > label_chars:
        labels = labels[: label_chars - 1] + "…"
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(summary.created))
    return f"{summary.title} · {labels} · {when}"


def usage_text(usage: MediaUsage) -> str:
    """Kept audio against its cap, in the MB (MiB) that SONOTAG_MEDIA_CAP_MB uses."""
    mb = 1024 * 1024
    cap = f" of {usage.cap_bytes / mb:,.0f} MB" if usage.cap_bytes else " (no limit)"
    files = "1 file" if usage.files == 1 else f"{usage.files} files"
    return f"{files}, {usage.bytes / mb:,.1f} MB{cap}"


def open_analysis(store: Store, model: LoadedModel, analysis_id: str) -> Analysed:
    """A stored analysis, ready to relabel; errors say why it cannot be opened."""
    stored = store.get_analysis(analysis_id)
    if stored is None:
        raise NotFoundError(
            f"There is no analysis {analysis_id} in the Library of this server: it was deleted, "
            "or the link comes from another SonoTag server. Analyse the audio again."
        )
    if key_checkpoint(stored.checkpoint_sha256) != model.info.checkpoint_sha256:
        raise ModelError(
            f"Analysis {analysis_id} was made with another OpenFLAM checkpoint "
            f"({key_text(stored.checkpoint_sha256)}); this server runs "
            f"{model.info.checkpoint_sha256[:12]}…. Analyse the audio again to get comparable "
            "numbers."
        )
    source, warning = _playable(store, stored.source, attached="batch_output" in stored.settings)
    if warning is None and not source.path.is_file():
        warning = (
            "The audio of this analysis is no longer kept on this server (storage limit, "
            "SONOTAG_MEDIA_CAP_MB): results are shown without playback."
        )
    return Analysed(
        source,
        stored.embeddings,
        stored.hop_s,
        0.0,
        stored.id,
        stored.labels,
        warning,
        settings=dict(stored.settings),
        fast=key_is_fast(stored.checkpoint_sha256),
    )


def _playable(store: Store, source: SourceInfo, *, attached: bool) -> tuple[SourceInfo, str | None]:
    """An attached batch item plays its original file, which lies outside the folders the
    player may serve: the first open keeps a copy with the other kept audio (under the same
    cap, least recently used evicted first). Only the audio is copied, never embeddings."""
    if not attached or not source.path.is_file():
        return source, None
    if source.path.resolve().is_relative_to(store.data_dir.resolve()):
        return source, None  # kept already (the store gave that path), or keep_media would
        # move a file the batch output still names
    try:
        return store.keep_media(source), None
    except SonoTagError as exc:
        return source, f"This audio could not be kept for playback ({exc}); results are shown."


def find_link_source(store: Store, url: str) -> SourceInfo | None:
    """The newest stored source of this link, in any accepted spelling of it (a shared
    ``youtu.be/ID?t=30`` finds the stored ``youtube.com/watch?v=ID``), or None."""
    link = _link(url)
    for source in store.sources_by_url(url, link.key if link else ""):
        if source.url == url or (link is not None and _same_link(source.url, link.url)):
            return source
    return None


def _link(url: str) -> Link | None:
    try:
        return parse_link(url)
    except SonoTagError:  # not an accepted link: only its exact spelling can match
        return None


def _same_link(stored: str | None, canonical: str) -> bool:
    link = _link(stored) if stored else None
    return link is not None and link.url == canonical


def stored_link(store: Store, url: str, *, hop_s: float, key: str) -> SourceInfo | None:
    """The kept audio of a link whose embeddings for this hop and model (``key``:
    :func:`~.embeddings.embedding_key`) are stored, so it needs neither a download nor the
    audio encoder; else None."""
    source = find_link_source(store, url)
    if source is None or not source.path.is_file():
        return None
    if store.latest_analysis_id(source.content_id, hop_s, key) is None:
        return None
    return source


def run(
    model: LoadedModel,
    source: SourceInfo,
    labels: LabelSet,
    *,
    hop_s: float,
    settings: Settings,
    store: Store | None,
    cache: EmbeddingCache | None = None,
    save: bool = True,
    run_settings: Mapping[str, Any] | None = None,
    progress: ProgressFn = no_progress,
    viewer: Viewer = OPERATOR_VIEWER,
    update_existing: bool = False,
) -> Analysed:
    """Embed ``source`` (reusing the cache or the store) and keep the run in the store,
    owned by ``viewer`` (:mod:`.access`).

    With ``save=False`` a new record is written only if this audio had none for this hop
    and model that ``viewer`` may list; otherwise that stored analysis stands for it.
    With ``update_existing`` the stored analysis of this audio, hop and model that the
    viewer may change takes the new labels and settings instead of a second copy (the
    dashboard: pressing Analyze again never adds a duplicate).
    """
    t0 = time.perf_counter()
    fast = settings.fast
    sha = embedding_key(model.info.checkpoint_sha256, fast)
    existing = _safe(
        lambda s: s.latest_analysis_id(source.content_id, hop_s, sha, visible_to=viewer.scope),
        store,
    )
    try:
        emb = known_embeddings(model, source, hop_s=hop_s, fast=fast, cache=cache, store=store)
        reused = emb is not None
        if emb is None:
            emb = embed_source(
                model, source, hop_s=hop_s, settings=settings, cache=cache, progress=progress
            )
    except BaseException:  # an error, or a cancelled run (a closed browser session)
        dirs: list[str | Path] = [settings.data_dir, *([store.data_dir] if store else [])]
        _discard_upload(source, dirs)
        raise
    seconds = time.perf_counter() - t0
    if store is None:
        return Analysed(source, emb, hop_s, seconds, labels=labels, reused=reused, fast=fast)
    if existing is not None and not save:
        return Analysed(source, emb, hop_s, seconds, existing, labels, reused=reused, fast=fast)
    mine = None
    if update_existing:
        mine = _safe(
            lambda s: s.latest_analysis_id(source.content_id, hop_s, sha, owned_by=viewer.scope),
            store,
        )
    try:
        analysis_id, kept = save_analysis(
            store,
            source,
            emb,
            labels,
            model,
            hop_s=hop_s,
            fast=fast,
            settings=dict(run_settings or {}),
            seconds=seconds,
            owner=viewer.owner,
            update_of=mine,
        )
    except StoreError as exc:
        log.warning("could not save the analysis", exc_info=True)
        return Analysed(
            source,
            emb,
            hop_s,
            seconds,
            existing,
            labels,
            f"{exc} The results below are not saved in the Library.",
            reused,
            unsaved=str(exc),
            fast=fast,
        )
    return Analysed(
        replace(kept, start_s=source.start_s),
        emb,
        hop_s,
        seconds,
        analysis_id,
        labels,
        reused=reused,
        fast=fast,
    )


def _discard_upload(source: SourceInfo, data_dirs: list[str | Path]) -> None:
    """An upload's working copy goes when its run fails or is cancelled: the browser still
    holds the bytes (a retry writes them again), and nothing else would ever delete it.
    Kept audio (``media/``) and files outside the data dirs are never touched."""
    if source.kind != "upload" or str(source.path) in ("", "."):  # "": no file kept
        return
    try:
        real = Path(source.path).resolve()
        roots = [Path(d).resolve() for d in data_dirs if str(d)]
        inside = any(
            real.is_relative_to(root) and not real.is_relative_to(root / MEDIA_DIR)
            for root in roots
        )
        if inside and real.is_file():
            real.unlink()
    except OSError:
        log.warning("could not delete the upload %s", source.path, exc_info=True)


def _safe(fn: Callable[[Store], _T], store: Store | None) -> _T | None:
    """``fn(store)``, a store read that may fail (damaged or locked database): that, or no
    store, counts as 'nothing stored'."""
    if store is None:
        return None
    try:
        return fn(store)
    except StoreError:
        log.warning("store read failed", exc_info=True)
        return None


def visible_analyses(store: Store, viewer: Viewer, limit: int = 500) -> list[AnalysisSummary]:
    """The Library as ``viewer`` sees it (their own analyses and those of public links, or
    everything for the operator and on a shared server)."""
    return [r for r in store.list_analyses(limit) if can_list(viewer, r.owner, r.kind)]


def delete(store: Store, viewer: Viewer, analysis_id: str) -> bool:
    """Delete one analysis if ``viewer`` may (:class:`~.access.AccessError` otherwise);
    False when it is already gone."""
    owner = store.analysis_owner(analysis_id)
    if owner is None:
        return False
    check_change(viewer, owner, "delete")
    return store.delete_analysis(analysis_id)


# ---------------------------------------------------------------- the Library table

# sort name -> (key, reverse); ties go newest first, so equal titles keep a stable order
SORTS: dict[str, tuple[Callable[[AnalysisSummary], Any], bool]] = {
    "Newest first": (lambda r: r.created, True),
    "Oldest first": (lambda r: r.created, False),
    "Title (A–Z)": (lambda r: r.title.casefold(), False),
    "Longest first": (lambda r: r.duration_s or 0.0, True),
    "Shortest first": (lambda r: r.duration_s or 0.0, False),
    "Labels (A–Z)": (lambda r: r.labels_text.casefold(), False),
}
DEFAULT_SORT = "Newest first"


def sort_analyses(
    rows: Iterable[AnalysisSummary], order: str = DEFAULT_SORT
) -> list[AnalysisSummary]:
    """The Library rows in one of :data:`SORTS` (ValueError for another name). The table
    maps a selected row number back through this list, so the order must be the shown one."""
    if order not in SORTS:
        raise ValueError(f"Unknown sort {order!r}; one of {', '.join(SORTS)}.")
    key, reverse = SORTS[order]
    newest_first = sorted(rows, key=lambda r: r.created, reverse=True)
    return sorted(newest_first, key=key, reverse=reverse)  # stable: ties stay newest first


def filter_analyses(rows: Iterable[AnalysisSummary], text: str) -> list[AnalysisSummary]:
    """The rows whose title, link or labels hold every word of ``text``, ignoring case.
    Words are plain text, never patterns: "a.b" or "(" match only themselves."""
    words = text.casefold().split()
    if not words:
        return list(rows)

    def haystack(r: AnalysisSummary) -> str:
        return "\n".join((r.title, r.url or "", r.labels_text)).casefold()

    return [r for r in rows if all(w in haystack(r) for w in words)]


@dataclass(frozen=True)
class Deleted:
    """What :func:`delete_many` did with each id it was given."""

    deleted: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()  # someone else's (:func:`~.access.can_change`)
    missing: tuple[str, ...] = ()  # already gone (another tab, another visitor)
    failed: tuple[str, ...] = ()  # the store could not delete it (see ``error``)
    error: str | None = None  # the first store error, as the user should read it

    def notes(self, titles: Mapping[str, str]) -> list[tuple[str, str]]:
        """What to tell the user, as (``"success"`` or ``"warning"``, plain text) pairs;
        ``titles`` names each id (the titles the confirmation showed)."""

        def names(ids: tuple[str, ...]) -> str:
            return name_list([titles.get(i, i) for i in ids])

        out = []
        if self.deleted:
            out.append(
                ("success", f"Deleted {analyses(len(self.deleted))}: {names(self.deleted)}.")
            )
        if self.refused:
            out.append(
                (
                    "warning",
                    f"Not deleted, not yours: {names(self.refused)}. Only the "
                    "person who made an analysis, or the operator, can delete it.",
                )
            )
        if self.missing:
            out.append(("warning", f"Already deleted elsewhere: {names(self.missing)}."))
        if self.failed:
            out.append(("warning", f"Could not delete {names(self.failed)}: {self.error}"))
        return out


def analyses(n: int) -> str:
    """How many analyses, in words: "1 analysis", "3 analyses"."""
    return "1 analysis" if n == 1 else f"{n} analyses"


def name_list(titles: Sequence[str], most: int = 8) -> str:
    """'a', 'b' and 3 more: the titles a message names, each quoted and cut to 80
    characters (:func:`~.untrusted.quoted`), so a long selection stays a short message."""
    names = ", ".join(quoted(t) for t in titles[:most])
    return names + (f" and {len(titles) - most} more" if len(titles) > most else "")


def delete_question(titles: Sequence[str]) -> str:
    """The confirmation of a deletion, naming what it deletes."""
    return (
        f"Delete {analyses(len(titles))} for good: {name_list(titles, most=20)}? Their "
        "audio and embeddings go too unless another analysis uses them."
    )


def delete_many(store: Store, viewer: Viewer, analysis_ids: Sequence[str]) -> Deleted:
    """Delete exactly these analyses, each as :func:`delete` would; one that ``viewer``
    may not change is refused and the others still go. Never raises for one id: the
    outcome says what happened to each, so the page can say which stayed and why."""
    done: dict[str, list[str]] = {"deleted": [], "refused": [], "missing": [], "failed": []}
    error = None
    for analysis_id in dict.fromkeys(analysis_ids):  # each once, in the given order
        try:
            outcome = "deleted" if delete(store, viewer, analysis_id) else "missing"
        except AccessError:
            outcome = "refused"
        except StoreError as exc:
            log.warning("could not delete %s", analysis_id, exc_info=True)
            outcome, error = "failed", error or str(exc)
        done[outcome].append(analysis_id)
    return Deleted(
        deleted=tuple(done["deleted"]),
        refused=tuple(done["refused"]),
        missing=tuple(done["missing"]),
        failed=tuple(done["failed"]),
        error=error,
    )

"""One analysis, the same way for every front end: the dashboard, the CLI and batch.

A :class:`Service` holds what a run needs (the model, settings, the store, the caches)
and does the run rules once: a link whose audio and embeddings are stored is neither
downloaded nor encoded again; a downloaded link is remembered per process; embeddings
are reused from memory or the store; a run is saved with the event settings actually
used; a stored analysis opens only with the checkpoint that made it; the report (what
every view and export shows) carries the stored reviews. Front ends only turn their
input into these calls and present what comes back.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sonotag_core.access import OPERATOR_VIEWER, Viewer
from sonotag_core.domain.calibration import Calibration, threshold_origins
from sonotag_core.domain.embeddings import embedding_key
from sonotag_core.domain.events import EventParams
from sonotag_core.domain.labels import LabelSet
from sonotag_core.domain.progress import ProgressFn, no_progress
from sonotag_core.domain.report import Report
from sonotag_core.domain.review import with_reviews
from sonotag_core.domain.timeline import Timeline
from sonotag_core.errors import SonoTagError
from sonotag_core.inference.embedding_cache import EmbeddingCache
from sonotag_core.inference.model import LoadedModel
from sonotag_core.inference.scoring import TextCache
from sonotag_core.media import sources
from sonotag_core.media.sources import SourceInfo
from sonotag_core.service.analysis import build_report, score
from sonotag_core.service.detectors import Detector, check_for_model
from sonotag_core.service.library import Analysed, open_analysis, run, stored_link
from sonotag_core.service.search import SearchHit, search_library
from sonotag_core.service.similar import SimilarHit, find_similar
from sonotag_core.service.teach import QueueItem, Refined, refine_label, review_next
from sonotag_core.settings import Settings
from sonotag_core.store.database import Store

log = logging.getLogger(__name__)
LINK_MEMO_ENTRIES = 256  #: downloaded links one server process remembers (least recent go)


@dataclass
class LinkMemo:
    """Canonical link -> downloaded source, so a shared link is fetched once per process;
    bounded (least recently used first out), and a source whose file is gone is forgotten."""

    max_entries: int = LINK_MEMO_ENTRIES
    items: OrderedDict[str, SourceInfo] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, url: str) -> SourceInfo | None:
        with self.lock:
            info = self.items.get(url)
            if info is None:
                return None
            if not Path(info.path).exists():
                del self.items[url]
                return None
            self.items.move_to_end(url)
            return info

    def put(self, url: str, info: SourceInfo) -> None:
        with self.lock:
            self.items[url] = info
            self.items.move_to_end(url)
            while len(self.items) > self.max_entries:
                self.items.popitem(last=False)


def run_settings(hop_s: float, params: EventParams) -> dict[str, Any]:
    """What a stored analysis keeps of the settings it was made with (its exports and the
    Library reopen it with these)."""
    return {"hop_s": float(hop_s), **params.as_settings()}


def stored_params(settings: Settings, stored: Mapping[str, Any]) -> EventParams:
    """The inverse of :func:`run_settings`: a stored analysis's event settings where they
    are valid (an older or hand-edited row may hold anything), else the defaults."""
    keys = EventParams().as_settings()  # the event settings a stored analysis keeps
    kept = {k: stored[k] for k in keys if k in stored}
    try:
        return EventParams.from_settings(settings, **kept)
    except (SonoTagError, TypeError, ValueError):
        log.info("stored event parameters ignored: %r", kept)
        return EventParams.from_settings(settings)


@dataclass
class Service:
    """Everything one run needs; cheap to build per request around shared parts."""

    model: LoadedModel
    settings: Settings
    store: Store | None = None
    texts: TextCache | None = None
    cache: EmbeddingCache | None = None
    links: LinkMemo | None = None
    #: label -> the detector that scores it instead of its text (:mod:`.detectors`)
    detectors: Mapping[str, Detector] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.texts is None:
            self.texts = TextCache(self.model)
        for detector in self.detectors.values():
            check_for_model(detector, self.model.info.checkpoint_sha256)

    def with_detectors(self, detectors: Iterable[Detector]) -> Service:
        """This service with each detector scoring its label (a later one of the same
        label wins); DetectorError for one made for another checkpoint."""
        chosen = dict(self.detectors)
        chosen.update({d.label: d for d in detectors})
        return replace(self, detectors=chosen)

    @property
    def embedding_key(self) -> str:
        """What this service's embeddings are kept under: the checkpoint, and whether fast
        mode makes them (:func:`~.embeddings.embedding_key`)."""
        return embedding_key(self.model.info.checkpoint_sha256, self.settings.fast)

    # ---------------------------------------------------------------- sources

    def link_source(
        self, url: str, workdir: Path, *, hop_s: float, progress: ProgressFn = no_progress
    ) -> SourceInfo:
        """The audio of a link: its kept copy when this hop and model are stored (no
        download, no encoding), else one this process downloaded, else a download."""
        link = sources.parse_link(url)
        info = None
        if self.store is not None:
            try:
                info = stored_link(
                    self.store,
                    link.url,
                    hop_s=hop_s,
                    key=self.embedding_key,
                )
            except SonoTagError:  # an unreadable store costs a download, not the run
                info = None
        if info is None and self.links is not None:
            info = self.links.get(link.url)
        if info is None:
            workdir.mkdir(parents=True, exist_ok=True)
            info = sources.from_url(
                link.url, workdir, max_duration_s=self.settings.max_duration_s, progress=progress
            )
            if self.links is not None:
                self.links.put(link.url, info)
        return replace(info, start_s=link.start_s)  # keep the link's &t=

    # ---------------------------------------------------------------- the Library

    def search(
        self, label: str, *, top_k: int = 20, viewer: Viewer = OPERATOR_VIEWER
    ) -> list[SearchHit]:
        """The moments of all stored audio (that ``viewer`` may see, made with this model
        in this mode: exact or fast) where ``label`` is most probable, best first."""
        store = self._library_store()
        assert self.texts is not None
        return search_library(
            store,
            self.texts,
            label,
            top_k=top_k,
            checkpoint_sha256=self.embedding_key,
            max_label_chars=self.settings.max_label_chars,
            visible_to=viewer.scope,
        )

    def similar(
        self,
        analysis_id: str,
        at_s: float,
        to_s: float,
        *,
        not_text: str | None = None,
        top_k: int = 20,
        viewer: Viewer = OPERATOR_VIEWER,
    ) -> list[SimilarHit]:
        """Find similar: the moments of all stored audio (that ``viewer`` may see, made
        with this model in this mode) most like ``at_s``..``to_s`` of a stored analysis,
        best first, optionally "but not ``not_text``" (:mod:`.similar`)."""
        store = self._library_store()
        assert self.texts is not None
        return find_similar(
            store,
            self.texts,
            analysis_id,
            at_s,
            to_s,
            checkpoint_sha256=self.embedding_key,
            not_text=not_text,
            top_k=top_k,
            max_label_chars=self.settings.max_label_chars,
            visible_to=viewer.scope,
        )

    # ---------------------------------------------------------------- teaching a label

    def refine(
        self,
        label: str,
        *,
        name: str | None = None,
        viewer: Viewer = OPERATOR_VIEWER,
        save: bool = True,
    ) -> Refined:
        """Refine ``label`` from the reviews of every analysis ``viewer`` may change (made
        with this model in this mode) into the next version of the detector ``name``
        (default: the label), stored unless ``save=False`` (a refit between verdicts
        that only reorders the queue) (:func:`.teach.refine_label`)."""
        assert self.texts is not None
        return refine_label(
            self._library_store(),
            self.texts,
            label,
            embedding_key=self.embedding_key,
            viewer=viewer,
            name=name,
            max_label_chars=self.settings.max_label_chars,
            save=save,
        )

    def review_next(
        self,
        label: str,
        *,
        detector: Detector | None = None,
        count: int = 20,
        viewer: Viewer = OPERATOR_VIEWER,
    ) -> list[QueueItem]:
        """The unreviewed moments of ``viewer``'s library whose verdict on ``label`` would
        teach its detector (or the text, without one) most (:func:`.teach.review_next`)."""
        assert self.texts is not None
        return review_next(
            self._library_store(),
            self.texts,
            label,
            embedding_key=self.embedding_key,
            viewer=viewer,
            detector=detector,
            threshold=self.settings.threshold,
            count=count,
            max_label_chars=self.settings.max_label_chars,
        )

    def _library_store(self) -> Store:
        if self.store is None:
            raise SonoTagError(
                "The Library cannot be read on this server, so there is nothing to search."
            )
        return self.store

    # ---------------------------------------------------------------- runs

    def analyse(
        self,
        source: SourceInfo,
        labels: LabelSet,
        *,
        hop_s: float,
        params: EventParams,
        save: bool = True,
        viewer: Viewer = OPERATOR_VIEWER,
        update_existing: bool = False,
        progress: ProgressFn = no_progress,
    ) -> Analysed:
        """Embed (or reuse) and keep the run with the settings it used
        (:func:`.library.run` holds the saving rules)."""
        return run(
            self.model,
            source,
            labels,
            hop_s=hop_s,
            settings=self.settings,
            store=self.store,
            cache=self.cache,
            save=save,
            run_settings=run_settings(hop_s, params),
            progress=progress,
            viewer=viewer,
            update_existing=update_existing,
        )

    def open(self, analysis_id: str) -> Analysed:
        """A stored analysis, ready to relabel (errors say why it cannot be opened)."""
        if self.store is None:
            raise SonoTagError(
                "The Library cannot be read on this server; analyse the audio again."
            )
        return open_analysis(self.store, self.model, analysis_id)

    def timeline(self, analysed: Analysed, labels: LabelSet) -> Timeline:
        """Frame probabilities of ``labels`` on a kept analysis (relabeling, no encoder);
        a label with a detector (:attr:`detectors`) is scored by it, not by its text."""
        assert self.texts is not None
        probes = {x: d.probe for x, d in self.detectors.items() if x in labels.labels}
        return score(self.texts, analysed.embeddings, labels, probes)

    def _detectors_used(self, labels: LabelSet) -> dict[str, Any]:
        """``detectors`` for the report's settings: which detector (name, version,
        checkpoint) scored which label; nothing when every label was scored by its text."""
        used = {x: d.provenance() for x, d in self.detectors.items() if x in labels.labels}
        return {"detectors": used} if used else {}

    def _threshold_origins(self, params: EventParams) -> dict[str, Any]:
        """``label_threshold_origins`` for the report's settings: which per-label
        thresholds are kept calibrations (and of what), which were set by hand."""
        if not params.label_thresholds:
            return {}
        kept: dict[str, Calibration] = {}
        if self.store is not None:
            try:
                kept = self.store.get_calibrations(
                    params.label_thresholds, self.model.info.checkpoint_sha256
                )
            except SonoTagError:  # unreadable: every threshold reads as set by hand
                log.warning("calibrations unreadable", exc_info=True)
        return {"label_threshold_origins": threshold_origins(params.label_thresholds, kept)}

    def report(
        self,
        analysed: Analysed,
        labels: LabelSet,
        params: EventParams,
        *,
        extra: Mapping[str, Any] | None = None,
        reviews: bool = True,
    ) -> Report:
        """Kept embeddings + labels + event settings -> what every view and export shows,
        with the stored verdicts on its events and its marked spans (rows after them).
        Costs a text encoding (cached per label) and a matrix product: this is
        relabeling."""
        timeline = self.timeline(analysed, labels)
        extra = {**self._threshold_origins(params), **self._detectors_used(labels), **(extra or {})}
        report = build_report(
            analysed.source,
            timeline,
            self.model,
            params,
            hop_s=analysed.hop_s,
            fast=analysed.fast,
            settings=extra,
        )
        if reviews and analysed.analysis_id and self.store is not None:
            try:
                report = with_reviews(
                    report,
                    self.store.get_reviews(analysed.analysis_id),
                    self.store.get_spans(analysed.analysis_id),
                )
            except SonoTagError:  # unreadable verdicts cost the review column, not the view
                log.warning("reviews of %s unreadable", analysed.analysis_id, exc_info=True)
        return report

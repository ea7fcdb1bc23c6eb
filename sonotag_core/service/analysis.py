"""The pipeline end to end: a decoded file -> kept audio embeddings -> timeline -> report.

Two entry points matter: :func:`embed_file` (expensive, once per audio and hop) and
:func:`score` (cheap: text encoder + matrix product, for every relabel).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sonotag_core.access import OPERATOR
from sonotag_core.domain.embeddings import EMBED_DIM, AudioEmbeddings, embedding_key
from sonotag_core.domain.events import EventParams, detect_events
from sonotag_core.domain.labels import LabelSet
from sonotag_core.domain.probe import Probe
from sonotag_core.domain.progress import EncodeProgress, Progress, ProgressFn, no_progress
from sonotag_core.domain.report import Report
from sonotag_core.domain.timefmt import duration as duration_text
from sonotag_core.domain.timeline import Timeline, assemble
from sonotag_core.domain.windows import (
    FRAMES_PER_WINDOW,
    SAMPLE_RATE,
    hop_samples,
    iter_windows,
    window_count,
)
from sonotag_core.errors import LimitError
from sonotag_core.inference.embedding_cache import EmbeddingCache, EmbeddingKey
from sonotag_core.inference.encode import encode_windows
from sonotag_core.inference.model import LoadedModel
from sonotag_core.inference.scheduler import AudioMeter, audio_meter, encoder_queue
from sonotag_core.inference.scoring import TextCache, frame_probabilities
from sonotag_core.media import decode
from sonotag_core.service.frames import probe_frames
from sonotag_core.settings import Settings, check_hop
from sonotag_core.store.database import Store, StoreError
from sonotag_core.untrusted import quoted, shown

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # only a type here: analysis never fetches anything itself
    from sonotag_core.media.sources import SourceInfo


#: A container often states a little more than decodes (an mp3's padding: a 180-s mp3
#: says 180.036 s and decodes to 180.000 s, 18 windows, not 19), so the window total shown
#: while decoding runs is counted from the stated duration less this; it is made exact
#: when decoding ends.
DURATION_SLACK_S = 0.1


def expected_windows(duration_s: float | None, hop: int) -> int | None:
    """The window total to show before decoding ends, counted as the windowing counts
    (:func:`~.windows.window_count`); None when the duration is unknown."""
    if not duration_s:
        return None
    return window_count(max(1, int(round((duration_s - DURATION_SLACK_S) * SAMPLE_RATE))), hop)


def embed_file(
    model: LoadedModel,
    path: Path,
    *,
    hop_s: float,
    settings: Settings,
    progress: ProgressFn = no_progress,
    name: str | None = None,
) -> AudioEmbeddings:
    """Decode ``path`` as a stream and keep the audio encoder's per-window features
    (``name``: what messages call the file; the user's name for it, not the server's).

    Memory holds one window plus one decoded block of audio at a time; only the
    embeddings (64 KiB per window, 23 MB per hour) grow with duration. An exception from
    ``progress`` (a cancel) stops ffmpeg at once and keeps nothing. ``settings.fast``:
    the encoder runs in bf16 (:mod:`~.inference.fast_mode`). Inside
    :func:`~.scheduler.charging`, the visitor's audio budget is asked before decoding
    (with the length the file states) and charged block by block as audio decodes.
    """
    check_hop(hop_s)
    hop = hop_samples(hop_s)
    name = name or Path(path).name
    info = decode.probe(path, name=name)
    if info.duration_s is not None and info.duration_s > settings.max_duration_s:
        raise LimitError(_too_long(name, info.duration_s, settings.max_duration_s))
    meter = audio_meter()  # the visitor's audio budget, when a front end set one
    if meter is not None:  # a stated length is known now; an unstated one as it decodes
        stated = info.duration_s and max(0.0, info.duration_s - DURATION_SLACK_S)
        meter.check(quoted(name), stated or None)
    shown_progress = EncodeProgress(progress, shown(name), expected_windows(info.duration_s, hop))
    # decoding reports nothing itself: it is folded into the one "encode" stage
    decoded = decode.stream_samples(
        path, max_duration_s=settings.max_duration_s, info=info, name=name
    )
    counted = 0

    def blocks():
        nonlocal counted
        for block in decoded:
            counted += block.size
            if meter is not None:
                meter.charge(quoted(name), block.size / SAMPLE_RATE)
            yield block
        shown_progress.stream_ended(window_count(counted, hop))

    starts: list[int] = []
    feats: list[np.ndarray] = []
    try:
        with encoder_queue().slot(on_wait=lambda ahead: progress(_queued(ahead, meter))):
            shown_progress.start()
            batches = encode_windows(
                model,
                iter_windows(blocks(), hop),
                batch_size=settings.batch_size,
                fast=settings.fast,
            )
            with contextlib.closing(batches):
                for batch_starts, batch_feats in batches:
                    starts.extend(batch_starts)
                    feats.append(batch_feats)
                    shown_progress.batch_done(len(batch_starts))
        shown_progress.finish()
    finally:
        decoded.close()  # on a cancel: ffmpeg stops now, not when the traceback is gone
    features = (
        np.concatenate(feats) if feats else np.zeros((0, FRAMES_PER_WINDOW, EMBED_DIM), np.float32)
    )
    return AudioEmbeddings(np.asarray(starts, dtype=np.int64), features, counted, hop)


def _queued(ahead: int, meter: AudioMeter | None = None) -> Progress:
    waiting = "1 analysis" if ahead == 1 else f"{ahead} analyses"
    text = f"Queued, position {ahead + 1}: {waiting} ahead of yours"
    if meter is not None and (allowance := meter.allowance()):
        text += f". Your audio allowance: {allowance}"
    return Progress("queue", 0, None, "analyses", text)


def score(
    texts: TextCache,
    embeddings: AudioEmbeddings,
    labels: LabelSet,
    probes: Mapping[str, Probe] | None = None,
) -> Timeline:
    """Frame probabilities for ``labels`` from kept embeddings: no audio encoder involved.
    A label in ``probes`` (a refined detector's) is scored by its probe, not its text."""
    probes = {x: p for x, p in (probes or {}).items() if x in labels.labels}
    by_text = tuple(x for x in labels.labels if x not in probes)
    maps = frame_probabilities(embeddings.features, texts.encode(by_text))
    timeline = assemble(
        maps, embeddings.starts.tolist(), embeddings.n_samples, by_text, labels.negatives
    )
    if not probes:
        return timeline
    rows = dict(zip(by_text, timeline.probabilities, strict=True))
    rows.update({x: probe_frames(p, embeddings) for x, p in probes.items()})
    probabilities = np.stack([rows[x] for x in labels.labels]).astype(np.float32)
    return Timeline(labels.labels, probabilities, timeline.duration_s, labels.negatives)


def build_report(
    source: SourceInfo,
    timeline: Timeline,
    model: LoadedModel,
    params: EventParams,
    *,
    hop_s: float,
    fast: bool,
    settings: Mapping[str, Any] | None = None,
) -> Report:
    """Events from the timeline plus provenance: what every view and export shows
    (``fast``: the embeddings were made in fast mode; the exports' settings say so)."""
    used = {
        "hop_s": hop_s,
        **params.as_settings(),
        "device": model.device,
        "fast_mode": fast,
        **(settings or {}),
    }
    return Report(
        source=source.as_dict(),
        model=model.info,
        settings=used,
        timeline=timeline,
        events=detect_events(timeline, params),
    )


def _too_long(name: str, duration_s: float, limit_s: float) -> str:
    return (
        f"{quoted(name)} is {duration_text(duration_s)} long; the limit is {duration_text(limit_s)} "
        "(SONOTAG_MAX_DURATION_S). Trim the audio or raise the limit."
    )


def known_embeddings(
    model: LoadedModel,
    source: SourceInfo,
    *,
    hop_s: float,
    fast: bool,
    cache: EmbeddingCache | None = None,
    store: Store | None = None,
) -> AudioEmbeddings | None:
    """This audio's embeddings for this model, hop and mode (exact or fast) if they exist
    already: the in-memory cache first, then the result store (float16, converted back to
    float32)."""
    key = _key(model, source, hop_s, fast)
    emb = cache.get(key) if cache is not None else None
    if emb is None and store is not None:
        try:
            emb = store.get_embeddings(*key)
        except StoreError:  # a damaged or locked store costs an encoding, not the analysis
            log.warning("stored embeddings unreadable; encoding again", exc_info=True)
        if emb is not None and cache is not None:
            cache.put(key, emb)
    return emb


def embed_source(
    model: LoadedModel,
    source: SourceInfo,
    *,
    hop_s: float,
    settings: Settings,
    cache: EmbeddingCache | None = None,
    store: Store | None = None,
    progress: ProgressFn = no_progress,
) -> AudioEmbeddings:
    """:func:`embed_file`, unless :func:`known_embeddings` has them already.

    Nothing is saved here: the caller decides when a run becomes a stored analysis
    (:func:`save_analysis`).
    """
    emb = known_embeddings(model, source, hop_s=hop_s, fast=settings.fast, cache=cache, store=store)
    if emb is None:
        emb = embed_file(
            model,
            source.path,
            hop_s=hop_s,
            settings=settings,
            progress=progress,
            name=source.display_name,
        )
        if cache is not None:
            cache.put(_key(model, source, hop_s, settings.fast), emb)
    return emb


def _key(model: LoadedModel, source: SourceInfo, hop_s: float, fast: bool) -> EmbeddingKey:
    return EmbeddingKey(
        source.content_id, float(hop_s), embedding_key(model.info.checkpoint_sha256, fast)
    )


#: Sources whose audio the store keeps for playback; files and examples keep their own path.
KEPT_KINDS = ("upload", "url")


def save_analysis(
    store: Store,
    source: SourceInfo,
    embeddings: AudioEmbeddings,
    labels: LabelSet,
    model: LoadedModel,
    *,
    hop_s: float,
    fast: bool,
    settings: Mapping[str, Any],
    seconds: float,
    owner: str = OPERATOR,
    update_of: str | None = None,
) -> tuple[str, SourceInfo]:
    """Store the analysis (one transaction), then keep the audio of an upload or a link.

    The one save every front end calls: the store only writes rows
    (:meth:`~.store.database.Store.add_analysis`, ``update_analysis``, ``keep_media``);
    which of them a run needs, and in what order, is decided here.

    Returns the analysis id and the source pointing at the kept audio: an upload's or a
    download's working copy is moved into the store, so use the returned source from now
    on. Saving comes first so that a failed save (:class:`~.store.StoreError`, e.g. a
    full disk) leaves the working copy where it was; if only keeping the audio fails, the
    analysis stands, with the original path, and the failure is logged.
    """
    if update_of is not None and store.update_analysis(
        update_of, labels, settings=settings, seconds=seconds
    ):
        analysis_id = update_of  # ``update_of``: that stored analysis gets this run instead
    else:
        analysis_id = store.add_analysis(
            source,
            embeddings,
            labels,
            hop_s=hop_s,
            checkpoint_sha256=embedding_key(model.info.checkpoint_sha256, fast),
            model_name=model.info.name,
            settings=settings,
            seconds=seconds,
            owner=owner,
        )
    if source.kind not in KEPT_KINDS:
        return analysis_id, source
    try:
        return analysis_id, store.keep_media(source)
    except StoreError:
        log.warning(
            "analysis %s saved, but its audio could not be kept", analysis_id, exc_info=True
        )
        return analysis_id, source

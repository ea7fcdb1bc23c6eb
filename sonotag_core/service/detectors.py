"""Detectors: labels refined from reviews, named and versioned, kept in the store,
exported and imported as JSON cards, and applied to stored embeddings.

A **detector** is a :class:`~sonotag_core.domain.probe.Probe` (512 weights, a bias and
the text's prior bias) with what it was made from: the label text, the checkpoint's
SHA-256 (its embeddings are meaningless to another model), how many examples of each kind
taught it, its cross-validated metrics and calibrated threshold, when and by whom.

**The card** is that as one JSON object (``"format": "sonotag-detector"``), never a
pickle or joblib file: reading one can run code. :func:`read_card` refuses anything that is
not JSON, a card for another checkpoint (naming both), and weights that fail
:func:`~sonotag_core.domain.probe.card_to_probe`'s checks (shape, finite, magnitude).
JSON writes Python floats exactly, so a card imported on another server gives identical
probabilities.

**Who sees what:** the rules of analyses (:mod:`~sonotag_core.access`): a visitor lists,
uses and changes their own detectors; the operator (and a shared server) all of them.

**Applying** one (:func:`~.frames.probe_frames`, through ``Service.detectors``): the label's frame probabilities are
the probe's :meth:`~sonotag_core.domain.probe.Probe.scores` on the stored frame
embeddings, overlapping windows averaged like the text path; no audio encoder runs.
"""

from __future__ import annotations

import json
import math
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sonotag_core import __version__
from sonotag_core.access import OPERATOR, OPERATOR_VIEWER, Viewer, can_change
from sonotag_core.domain.probe import Probe, card_to_probe, probe_to_card
from sonotag_core.errors import DetectorError
from sonotag_core.store.database import Store, StoredDetector
from sonotag_core.untrusted import quoted

CARD_FORMAT = "sonotag-detector"
CARD_VERSION = 1
MAX_NAME_CHARS = 100
MAX_CARD_BYTES = 1_000_000  # 512 weights take ~12 kB; anything far larger is not a card
#: the example counts a card carries (:class:`~.teach.Examples`)
EXAMPLE_KINDS = ("accepted", "relabelled", "added", "rejected", "negative", "weak")


def check_name(name: str) -> str:
    """A detector name: printable, spacing collapsed, 1 to 100 characters."""
    cleaned = " ".join(
        "".join(ch for ch in str(name) if unicodedata.category(ch)[0] != "C").split()
    )
    if not cleaned or len(cleaned) > MAX_NAME_CHARS:
        raise DetectorError(
            f"A detector name has 1 to {MAX_NAME_CHARS} characters, not {quoted(str(name), 40)}."
        )
    return cleaned


@dataclass(frozen=True, eq=False)
class Detector:
    """One version of a refined label (see the module's notes). Compared by identity
    (``eq=False``): its probe holds an array, which has no single truth value."""

    name: str
    label: str
    checkpoint_sha256: str
    probe: Probe
    threshold: float | None = None
    version: int = 0  # 0: not stored yet
    examples: Mapping[str, int] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    owner: str = OPERATOR

    @property
    def ref(self) -> str:
        """``siren v3``: how reports and the UI name it."""
        return f"{self.name} v{self.version}"

    def card(self) -> dict[str, Any]:
        """The JSON card (everything but the owner, who is a fact of one server)."""
        return {
            "format": CARD_FORMAT,
            "version": CARD_VERSION,
            "name": self.name,
            "detector_version": self.version,
            "label": self.label,
            "checkpoint_sha256": self.checkpoint_sha256,
            "threshold": self.threshold,
            "examples": {k: int(v) for k, v in self.examples.items()},
            "metrics": dict(self.metrics),
            "created": self.created,
            "sonotag_version": __version__,
            "probe": probe_to_card(self.probe),
        }

    def provenance(self) -> dict[str, Any]:
        """What a report's settings say about the detector that scored a label."""
        return {
            "name": self.name,
            "version": self.version,
            "checkpoint_sha256": self.checkpoint_sha256,
            "threshold": self.threshold,
            "examples": dict(self.examples),
        }


def from_card(
    card: Mapping[str, Any], checkpoint_sha256: str, *, owner: str = OPERATOR
) -> Detector:
    """A detector from a card's dict, checked (see :func:`read_card`)."""
    if not isinstance(card, Mapping) or card.get("format") != CARD_FORMAT:
        got = card.get("format") if isinstance(card, Mapping) else type(card).__name__
        raise DetectorError(
            f"This is not a SonoTag detector card (format {quoted(str(got), 40)}, expected "
            f"{CARD_FORMAT!r}): export it with `sonotag detector export`."
        )
    if card.get("version") != CARD_VERSION:
        raise DetectorError(
            f"This detector card has layout version {card.get('version')!r}; this SonoTag "
            f"reads version {CARD_VERSION}."
        )
    made_for = str(card.get("checkpoint_sha256", ""))
    if made_for != checkpoint_sha256:
        raise DetectorError(
            f"This detector was made for the OpenFLAM checkpoint {made_for[:12] or '?'}…, "
            f"but this server runs {checkpoint_sha256[:12]}…: its weights mean nothing "
            "here. Refine the label again on this server."
        )
    label = card.get("label")
    if not isinstance(label, str) or not label.strip():
        raise DetectorError("The detector card names no label: export it again.")
    threshold = card.get("threshold")
    if threshold is not None and not (
        isinstance(threshold, (int, float)) and 0.0 < float(threshold) < 1.0
    ):
        raise DetectorError(f"The detector card's threshold {threshold!r} is not between 0 and 1.")
    examples = card.get("examples") or {}
    metrics = card.get("metrics") or {}
    if not isinstance(examples, Mapping) or not isinstance(metrics, Mapping):
        raise DetectorError("The detector card's examples and metrics are not JSON objects.")
    created = card.get("created", time.time())
    return Detector(
        name=check_name(str(card.get("name", label))),
        label=" ".join(label.split()),
        checkpoint_sha256=checkpoint_sha256,
        probe=card_to_probe(card.get("probe")),  # type: ignore[arg-type]  # checked there
        threshold=None if threshold is None else float(threshold),
        version=int(card.get("detector_version") or 0),
        examples={str(k): int(v) for k, v in examples.items() if isinstance(v, int)},
        metrics=dict(metrics),
        created=float(created) if isinstance(created, (int, float)) else time.time(),
        owner=owner,
    )


def read_card(data: bytes, checkpoint_sha256: str, *, owner: str = OPERATOR) -> Detector:
    """A detector from a card file's bytes: JSON only (a pickle or joblib file, or any
    other binary, is refused without being read), for this checkpoint, weights checked."""
    if len(data) > MAX_CARD_BYTES:
        raise DetectorError(
            f"This file is {len(data):,} bytes; a detector card is a small JSON file "
            f"(under {MAX_CARD_BYTES:,} bytes)."
        )
    head = data[:2]
    if head[:1] == b"\x80" or head == b"PK" or b"\x00" in data[:1024]:
        raise DetectorError(
            "This file is a pickle, joblib or other binary file, not a JSON detector card; "
            "SonoTag never loads those (they can run code). Export the card with "
            "`sonotag detector export`."
        )
    try:
        card = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise DetectorError(
            f"This file is not a JSON detector card ({exc}); SonoTag reads JSON cards only, "
            "never pickle or joblib files."
        ) from None
    return from_card(card, checkpoint_sha256, owner=owner)


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number in strict JSON")


def replace_name(detector: Detector, name: str) -> Detector:
    """The detector under another (checked) name."""
    return replace(detector, name=check_name(name))


def card_json(detector: Detector) -> str:
    """The card as strict JSON text (floats written exactly)."""
    return json.dumps(detector.card(), ensure_ascii=False, allow_nan=False, indent=1) + "\n"


# ---------------------------------------------------------------- the store


def save_detector(store: Store, detector: Detector, viewer: Viewer) -> Detector:
    """Keep ``detector`` as the next version of ``viewer``'s detector of that name."""
    kept = store.add_detector(
        viewer.owner,
        check_name(detector.name),
        detector.label,
        detector.checkpoint_sha256,
        detector.threshold,
        detector.card(),
    )
    return _from_stored(kept)


def import_card(store: Store, data: bytes, checkpoint_sha256: str, viewer: Viewer) -> Detector:
    """Check a card file's bytes (:func:`read_card`) and keep it as ``viewer``'s."""
    return save_detector(store, read_card(data, checkpoint_sha256, owner=viewer.owner), viewer)


def list_detectors(store: Store, viewer: Viewer) -> list[Detector]:
    """Every version of every detector ``viewer`` may use (their own; the operator and a
    shared server: all), by name then version."""
    rows = store.list_detectors(None if viewer.sees_all else viewer.owner)
    out = []
    for row in rows:
        try:
            out.append(_from_stored(row))
        except DetectorError:  # a row this SonoTag cannot read: not offered
            continue
    return out


def find_detector(store: Store, viewer: Viewer, name: str, version: int | None = None) -> Detector:
    """``viewer``'s detector ``name`` (the newest version, or ``version``); a name with
    ``@N`` (``siren@2``) names a version. Another owner's is not found (DetectorError)."""
    base, at, number = str(name).rpartition("@")
    if at and number.isdigit() and version is None:
        name, version = base, int(number)
    name = check_name(name)
    mine = [d for d in list_detectors(store, viewer) if d.name == name]
    own = [d for d in mine if d.owner == viewer.owner] or mine  # one's own name first
    if version is not None:
        own = [d for d in own if d.version == version]
    if not own:
        known = sorted({d.name for d in list_detectors(store, viewer)})
        hint = f" Yours: {', '.join(quoted(k, 40) for k in known[:10])}." if known else ""
        what = f"{quoted(name, 60)} version {version}" if version else quoted(name, 60)
        raise DetectorError(f"There is no detector {what} on this server.{hint}")
    return max(own, key=lambda d: (d.owner == viewer.owner, d.version))


def delete_detector(store: Store, viewer: Viewer, name: str, version: int | None = None) -> int:
    """Delete ``viewer``'s detector (one version, or all); how many versions went."""
    detector = find_detector(store, viewer, name, version)
    if not can_change(viewer, detector.owner):
        raise DetectorError("Only the person who made this detector can delete it.")
    return store.delete_detector(detector.owner, detector.name, version)


def _from_stored(row: StoredDetector) -> Detector:
    return from_card(row.card, row.checkpoint_sha256, owner=row.owner)


# ---------------------------------------------------------------- applying


def check_for_model(detector: Detector, checkpoint_sha256: str) -> Detector:
    """``detector`` if it was made for this checkpoint, else DetectorError naming both."""
    if detector.checkpoint_sha256 != checkpoint_sha256:
        raise DetectorError(
            f"The detector {quoted(detector.ref, 60)} was made for the OpenFLAM checkpoint "
            f"{detector.checkpoint_sha256[:12]}…, but this server runs "
            f"{checkpoint_sha256[:12]}…."
        )
    return detector


def detector_from_file(path: Path, checkpoint_sha256: str) -> Detector:
    """A card file given on a command line (``--detector FILE.json``)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DetectorError(
            f"The detector card {quoted(str(path))} cannot be read ({exc})."
        ) from None
    return read_card(data, checkpoint_sha256)


def finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def resolve_detectors(
    given: Sequence[str],
    checkpoint_sha256: str,
    *,
    store: Store | None = None,
    data_dir: str | Path | None = None,
    viewer: Viewer = OPERATOR_VIEWER,
) -> list[Detector]:
    """The detectors a command line names (``--detector FILE.json|NAME``): a card file
    where one exists (or the name ends in .json), else ``viewer``'s stored detector of
    that name (``NAME@VERSION`` for an older one; the store at ``data_dir`` is opened when
    none is given); each checked against this checkpoint."""
    out = []
    for item in given:
        path = Path(item)
        if path.suffix.lower() == ".json" or path.is_file():
            detector = detector_from_file(path, checkpoint_sha256)
        else:
            if store is None and data_dir is None:
                raise DetectorError(
                    f"--detector {quoted(item, 60)}: stored detectors need the library; "
                    "give a card file (.json) instead."
                )
            store = store if store is not None else Store(data_dir)  # type: ignore[arg-type]
            detector = find_detector(store, viewer, item)
        out.append(check_for_model(detector, checkpoint_sha256))
    return out

"""All configuration in one place: a declarative table of ``SONOTAG_*`` settings.

The table feeds :class:`Settings` (read from the environment), the CLI help and the
README's settings section; a test checks that every setting is documented there.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .errors import LimitError
from .untrusted import quoted

ENV_PREFIX = "SONOTAG_"


def _default_model_dir() -> str:
    return str(Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub")


def _default_data_dir() -> str:
    return str(Path.home() / ".local" / "share" / "sonotag")


@dataclass(frozen=True)
class Settings:
    """Effective settings; build with :meth:`from_env` and change with :meth:`with_`."""

    model_dir: str = ""
    checkpoint: str = ""
    device: str = "auto"
    threads: int = 0
    batch_size: int = 4
    max_duration_s: float = 3 * 3600.0
    max_labels: int = 32
    max_label_chars: int = 100
    hop_s: float = 10.0
    threshold: float = 0.5
    median_frames: int = 1
    fill_gap_s: float = 0.32
    min_event_s: float = 0.0
    data_dir: str = ""
    media_cap_mb: float = 4096.0
    max_upload_mb: int = 500
    rate_limit_per_hour: int = 30
    access: str = "shared"
    admin_token: str = ""
    admin_emails: str = ""
    trusted_proxies: str = ""
    secret: str = ""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read every ``SONOTAG_*`` variable; unknown values raise a clear error."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, raw, type(getattr(cls(), f.name)))
        return cls(**values).validated()

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes).validated()

    def validated(self) -> Settings:
        s = self
        if not s.model_dir:
            s = replace(s, model_dir=_default_model_dir())
        if not s.data_dir:
            s = replace(s, data_dir=_default_data_dir())
        if s.threads <= 0:
            s = replace(s, threads=available_cpus())
        if s.device not in ("auto", "cpu", "cuda") and not s.device.startswith("cuda:"):
            raise LimitError(f"SONOTAG_DEVICE must be auto, cpu or cuda[:N], not {s.device!r}.")
        if s.batch_size < 1:
            raise LimitError("SONOTAG_BATCH_SIZE must be at least 1.")
        if s.max_duration_s <= 0:
            raise LimitError("SONOTAG_MAX_DURATION_S must be positive.")
        check_hop(s.hop_s)
        if not 0.0 < s.threshold < 1.0:
            raise LimitError(f"Threshold must be between 0 and 1 (exclusive), not {s.threshold}.")
        if s.median_frames < 1 or s.median_frames % 2 == 0:
            raise LimitError("Median filter length must be an odd number of frames (1 = off).")
        if not (math.isfinite(s.media_cap_mb) and s.media_cap_mb > 0):
            raise LimitError(
                f"SONOTAG_MEDIA_CAP_MB must be a positive number of MB, not {s.media_cap_mb}."
            )
        if s.max_upload_mb < 1:
            raise LimitError("SONOTAG_MAX_UPLOAD_MB must be at least 1.")
        if s.rate_limit_per_hour < 0:
            raise LimitError("SONOTAG_RATE_LIMIT_PER_HOUR must be 0 (no limit) or more.")
        from .access import check_mode, parse_networks

        check_mode(s.access)
        parse_networks(s.trusted_proxies)
        return s

    @property
    def media_cap_bytes(self) -> int:
        """``media_cap_mb`` in bytes (1 MB = 2**20 bytes), as :class:`~.store.Store` takes it."""
        return int(self.media_cap_mb * 1024 * 1024)

    def as_dict(self, *, redact: bool = False) -> dict[str, Any]:
        """Every setting; with ``redact`` the secret ones read "(set)" (for display)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        if redact:
            values.update({k: "(set)" for k in SECRET_SETTINGS if values[k]})
        return values


def available_cpus(cgroup_cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """CPUs this process can really use. In a container ``os.cpu_count()`` reports the
    host's cores; torch would start that many threads and thrash, so the affinity mask and
    a cgroup v2 CPU quota (Docker ``--cpus``, Railway's vCPU limit) bound it."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        quota, period = cgroup_cpu_max.read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return max(1, n)


def check_hop(hop_s: float) -> None:
    """Hops must be whole frames (0.3125 s) so overlapping frames align and can be averaged."""
    frames = hop_s / 0.3125
    if not (0 < hop_s <= 10.0) or abs(frames - round(frames)) > 1e-9:
        raise LimitError(
            f"Hop must be a multiple of 0.3125 s between 0.3125 and 10 s (10 = no overlap, 5 = 50 % overlap), not {hop_s}."
        )


def _parse(name: str, raw: str, kind: type) -> Any:
    try:
        if kind is bool:
            return raw.strip().lower() in ("1", "true", "yes", "on")
        return kind(raw)
    except ValueError:
        raise LimitError(
            f"{ENV_PREFIX}{name.upper()}={quoted(raw)} is not a valid {kind.__name__}."
        ) from None


# name -> help. The single place settings are documented; README's table is generated from it.
SETTINGS_HELP: dict[str, str] = {
    "model_dir": "Hugging Face cache directory holding the OpenFLAM checkpoint and roberta-base "
    "(default: $HF_HOME/hub or ~/.cache/huggingface/hub). `sonotag fetch-model` fills it.",
    "checkpoint": "Path to a local open_flam_oct17.pth; when set, the checkpoint is not looked up in the hub cache.",
    "device": "auto (cuda if present, else cpu), cpu, or cuda[:N].",
    "threads": "CPU threads for inference (torch.set_num_threads); 0 = the cores this process may use (a container's CPU quota included).",
    "batch_size": "10-s windows per audio-encoder batch (2-4 is fastest on CPU).",
    "max_duration_s": "Longest media accepted, in seconds (default 3 h); longer links are refused before download.",
    "max_labels": "Most labels per analysis.",
    "max_label_chars": "Longest label text, in characters.",
    "hop_s": "Default window hop in seconds: 10 = no overlap, 5 = 50 % overlap (frames averaged).",
    "threshold": "Default event threshold on the frame probability.",
    "median_frames": "Default median-filter length in frames (odd; 1 = off) before thresholding.",
    "fill_gap_s": "Default: gaps between events shorter than this are filled (one 0.3125-s frame by default).",
    "min_event_s": "Default: events shorter than this are dropped.",
    "data_dir": "Where SonoTag keeps downloads and results (default ~/.local/share/sonotag).",
    "max_upload_mb": "Largest upload, in MB (the dashboard's upload box; scripts/run.sh and the "
    "Docker image pass it to Streamlit as server.maxUploadSize).",
    "rate_limit_per_hour": "Most analyses one visitor may start per hour in the dashboard, "
    "counted by owner cookie and by client address (see SONOTAG_TRUSTED_PROXIES); 0 = no "
    "limit. Relabeling and opening stored analyses do not count.",
    "media_cap_mb": "Most disk space (MB) for kept audio (uploads, downloads) under "
    "SONOTAG_DATA_DIR/media; least recently used files are evicted first (their analyses "
    "stay, playback goes).",
    "access": "Who sees what in the dashboard: shared (everyone sees and may delete every "
    "analysis: one user or a trusted team) or private (a visitor sees their own analyses and "
    "those of public links, opens others' only through a share link, read-only). The Docker "
    "image sets private.",
    "admin_token": "With private access: an operator who enters this token on the About page "
    "sees and may delete every analysis. Empty = no such operator.",
    "admin_emails": "With private access and st.login (OIDC) configured: comma-separated "
    "e-mail addresses of signed-in accounts that act as the operator.",
    "trusted_proxies": "Comma-separated proxy addresses or CIDR ranges (e.g. Railway's) whose "
    "X-Forwarded-For header names the visitor's address for the rate limit; empty = trust none.",
    "secret": "Key that signs visitors' owner cookies; empty = a random key kept in "
    "SONOTAG_DATA_DIR/secret.key (made on first start).",
}

SECRET_SETTINGS = ("admin_token", "secret")  # shown as "(set)", never their value


def settings_table_markdown() -> str:
    """Markdown table of every setting, its default and help (used in the README)."""
    default = Settings()
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for f in fields(Settings):
        value = getattr(default, f.name)
        shown = "" if value == "" else str(value)
        rows.append(f"| `{ENV_PREFIX}{f.name.upper()}` | `{shown}` | {SETTINGS_HELP[f.name]} |")
    return "\n".join(rows)

"""All configuration in one place: one declarative table of ``SONOTAG_*`` settings.

Each field of :class:`Settings` is one row: its name, type, default, help and check
(:func:`setting`). Everything else reads that table: :meth:`Settings.from_env`,
:data:`SETTINGS` (the CLI's ``sonotag settings``, the About page), the README's settings
section (a test keeps it equal to :func:`settings_table_markdown`), and the launch
scripts: ``python -m sonotag_core.settings max_upload_mb`` prints the effective upload
limit that ``scripts/run.sh`` and the Docker image hand to Streamlit. Code that needs a
default (``EventParams``, the share-link view) takes it from :data:`DEFAULTS`, never
restates it; a test greps the tree for that.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar, cast, get_type_hints

from sonotag_core.access import check_mode, parse_networks
from sonotag_core.domain.event_params import event_param
from sonotag_core.domain.windows import FRAME_S, WINDOW_S
from sonotag_core.errors import ConfigError, SonoTagError
from sonotag_core.untrusted import one_line, quoted

ENV_PREFIX = "SONOTAG_"

T = TypeVar("T")
Check = Callable[[Any], object]  # raises ConfigError for a bad value; the result is ignored


def setting(default: T, help: str, check: Check | None = None, *, secret: bool = False) -> T:
    """One row of the table: a dataclass field that carries its help text and check."""
    meta = {"help": help, "check": check, "secret": secret}
    return cast(T, field(default=default, metadata=meta))


# ---------------------------------------------------------------- checks (one per row)


def check_hop(hop_s: float) -> None:
    """Hops must be whole frames so overlapping frames align and can be averaged."""
    frames = hop_s / FRAME_S
    if not (0 < hop_s <= WINDOW_S) or abs(frames - round(frames)) > 1e-9:
        raise ConfigError(
            f"Hop must be a multiple of {FRAME_S} s between {FRAME_S} and {WINDOW_S:g} s "
            f"({WINDOW_S:g} = no overlap, {WINDOW_S / 2:g} = 50 % overlap), not {hop_s}."
        )


def _device(value: str) -> None:
    if value not in ("auto", "cpu", "cuda") and not value.startswith("cuda:"):
        raise ConfigError(f"SONOTAG_DEVICE must be auto, cpu or cuda[:N], not {quoted(value)}.")


#: SONOTAG_BACKEND's values (:mod:`sonotag_core.inference.backend` says what each does)
BACKENDS = ("auto", "torch", "onednn")


def _backend(value: str) -> None:
    if value not in BACKENDS:
        raise ConfigError(
            f"SONOTAG_BACKEND must be {', '.join(BACKENDS[:-1])} or {BACKENDS[-1]}, "
            f"not {quoted(value)}."
        )


def _at_least(low: int, name: str, meaning: str = "") -> Check:
    def check(value: int) -> None:
        if value < low:
            raise ConfigError(f"{ENV_PREFIX}{name} must be {meaning or f'at least {low}'}.")

    return check


def _positive(name: str, unit: str) -> Check:
    def check(value: float) -> None:
        if not (math.isfinite(value) and value > 0):  # also rejects NaN
            raise ConfigError(
                f"{ENV_PREFIX}{name} must be a positive number of {unit}, not {value}."
            )

    return check


def event_setting(name: str) -> Any:
    """A row of the event-parameter table (:mod:`.domain.event_params`) as a setting: its
    default, help and check, the check's message naming the variable."""
    row = event_param(name)

    def check(value: Any) -> None:
        try:
            row.check(value)
        except ConfigError as exc:
            raise ConfigError(f"{ENV_PREFIX}{name.upper()}: {exc}") from None

    return setting(row.type(row.default), f"Default: {row.help[:1].lower()}{row.help[1:]}", check)


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Settings:
    """Effective settings; build with :meth:`from_env` and change with :meth:`with_`.
    ``Settings()`` holds the table's raw defaults (empty dirs, ``threads=0``);
    :meth:`validated` fills those in and runs every row's check."""

    model_dir: str = setting(
        "",
        "Hugging Face cache directory holding the OpenFLAM checkpoint and roberta-base "
        "(default: $HF_HOME/hub or ~/.cache/huggingface/hub). `sonotag fetch-model` fills it.",
    )
    checkpoint: str = setting(
        "",
        "Path to a local open_flam_oct17.pth; when set, the checkpoint is not looked up in "
        "the hub cache.",
    )
    device: str = setting("auto", "auto (cuda if present, else cpu), cpu, or cuda[:N].", _device)
    backend: str = setting(
        "auto",
        "Exact audio-encoder backend: torch (openflam's modules as they are), onednn (the "
        "same fp32 maths through oneDNN's inner product and fused attention, ~1.4x on a "
        "2-core EPYC) or auto (onednn on a CPU where it runs, else torch).",
        _backend,
    )
    threads: int = setting(
        0,
        "CPU threads for inference (torch.set_num_threads); 0 = the cores this process may "
        "use (a container's CPU quota included).",
    )
    batch_size: int = setting(
        0,
        "10-s windows per audio-encoder batch; 0 or auto = 4 on CPU (2-4 is fastest there), "
        "32 on a GPU (`bench/gpu.py` prints windows/s per batch size).",
        _at_least(0, "BATCH_SIZE", "0 (auto) or more"),
    )
    fast: bool = setting(
        False,
        "Fast mode: the audio encoder in bfloat16, 1.6-2x faster on CPUs with AMX or "
        "AVX512-BF16 (and GPUs), probabilities within 0.01 of the exact path. Refused where "
        "the hardware has no native bf16. Its embeddings are kept apart from exact ones.",
    )
    preload: bool = setting(
        True,
        "Load the model in the background as the dashboard server starts, so the first "
        "visitor does not wait for it (0 = load on the first analysis).",
    )
    max_duration_s: float = setting(
        3 * 3600.0,
        "Longest media accepted, in seconds (default 3 h); longer links are refused before "
        "download.",
        _positive("MAX_DURATION_S", "seconds"),
    )
    max_labels: int = setting(32, "Most labels per analysis.", _at_least(1, "MAX_LABELS"))
    max_label_chars: int = setting(
        100, "Longest label text, in characters.", _at_least(1, "MAX_LABEL_CHARS")
    )
    hop_s: float = setting(
        10.0,
        "Default window hop in seconds: 10 = no overlap, 5 = 50 % overlap (frames averaged).",
        check_hop,
    )
    # the event parameters' defaults: their rows live in the event-parameter table
    threshold: float = event_setting("threshold")
    median_frames: int = event_setting("median_frames")
    fill_gap_s: float = event_setting("fill_gap_s")
    min_event_s: float = event_setting("min_event_s")
    data_dir: str = setting(
        "", "Where SonoTag keeps downloads and results (default ~/.local/share/sonotag)."
    )
    media_cap_mb: float = setting(
        4096.0,
        "Most disk space (MB) for kept audio (uploads, downloads) under "
        "SONOTAG_DATA_DIR/media; least recently used files are evicted first (their analyses "
        "stay, playback goes).",
        _positive("MEDIA_CAP_MB", "MB"),
    )
    max_upload_mb: int = setting(
        500,
        "Largest upload, in MB (the dashboard's upload box). scripts/run.sh and the Docker "
        "image hand it to Streamlit as server.maxUploadSize (`python -m "
        "sonotag_core.settings max_upload_mb` prints it). The default covers 3 h of any "
        "compressed format (mp3 at 320 kbit/s is 430 MB for 3 h); convert WAV files over "
        "about 45 min first.",
        _at_least(1, "MAX_UPLOAD_MB"),
    )
    rate_limit_per_hour: int = setting(
        30,
        "Most analyses one visitor may start per hour in the dashboard, counted by owner "
        "cookie and by client address (see SONOTAG_TRUSTED_PROXIES); 0 = no limit. "
        "Relabeling and opening stored analyses do not count.",
        _at_least(0, "RATE_LIMIT_PER_HOUR", "0 (no limit) or more"),
    )
    audio_minutes_per_hour: int = setting(
        180,
        "Most minutes of audio one visitor may have encoded per hour in the dashboard, "
        "counted as it decodes (a file stated longer than what is left is refused at once, "
        "one of unknown length stops when the allowance runs out), by owner cookie and "
        "client address as the rate limit; 0 = no limit. Reused embeddings (relabeling, "
        "stored analyses) cost nothing.",
        _at_least(0, "AUDIO_MINUTES_PER_HOUR", "0 (no limit) or more"),
    )
    access: str = setting(
        "shared",
        "Who sees what in the dashboard: shared (everyone sees and may delete every "
        "analysis: one user or a trusted team) or private (a visitor sees their own analyses "
        "and those of public links, opens others' only through a share link, read-only). The "
        "Docker image sets private.",
        check_mode,
    )
    admin_token: str = setting(
        "",
        "With private access: an operator who enters this token on the About page sees and "
        "may delete every analysis. Empty = no such operator.",
        secret=True,
    )
    admin_emails: str = setting(
        "",
        "With private access and st.login (OIDC) configured: comma-separated e-mail "
        "addresses of signed-in accounts that act as the operator.",
    )
    trusted_proxies: str = setting(
        "",
        "Comma-separated proxy addresses or CIDR ranges (e.g. Railway's) whose "
        "X-Forwarded-For header names the visitor's address for the rate limit; empty = "
        "trust none.",
        parse_networks,
    )
    secret: str = setting(
        "",
        "Key that signs visitors' owner cookies; empty = a random key kept in "
        "SONOTAG_DATA_DIR/secret.key (made on first start).",
        secret=True,
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every ``SONOTAG_*`` variable; a bad value raises :class:`ConfigError`."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for row in SETTINGS:
            raw = env.get(row.env)
            if raw is not None and raw != "":
                values[row.name] = _parse(row, raw)
        return cls(**values).validated()

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes).validated()

    def validated(self) -> Settings:
        """Fill in the defaults that depend on the machine, then run every row's check."""
        s = self
        if not s.model_dir:
            s = replace(s, model_dir=_default_model_dir())
        if not s.data_dir:
            s = replace(s, data_dir=_default_data_dir())
        if s.threads <= 0:
            s = replace(s, threads=available_cpus())
        for row in SETTINGS:
            if row.check is not None:
                row.check(getattr(s, row.name))
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


@dataclass(frozen=True)
class Setting:
    """One row of the settings table, as readers (CLI, README, About page) see it."""

    name: str
    type: type
    default: Any
    help: str
    check: Check | None = None
    secret: bool = False

    @property
    def env(self) -> str:
        """The environment variable, e.g. ``SONOTAG_MAX_UPLOAD_MB``."""
        return ENV_PREFIX + self.name.upper()


def _rows() -> tuple[Setting, ...]:
    hints = get_type_hints(Settings)
    return tuple(Setting(f.name, hints[f.name], f.default, **f.metadata) for f in fields(Settings))


SETTINGS: tuple[Setting, ...] = _rows()
DEFAULTS = Settings()  #: the table's defaults, for code that needs one (never restate them)
# Compatible views of the table for older readers (CLI, About page): derived, not a copy.
SETTINGS_HELP: Mapping[str, str] = MappingProxyType({r.name: r.help for r in SETTINGS})
SECRET_SETTINGS: tuple[str, ...] = tuple(r.name for r in SETTINGS if r.secret)


def _default_model_dir() -> str:
    return str(Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub")


def _default_data_dir() -> str:
    return str(Path.home() / ".local" / "share" / "sonotag")


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


#: int settings whose 0 means "chosen for this machine": their variable also takes "auto"
AUTO_IS_ZERO = ("threads", "batch_size")


def _parse(row: Setting, raw: str) -> Any:
    try:
        if row.name in AUTO_IS_ZERO and raw.strip().lower() == "auto":
            return 0
        if row.type is bool:
            return raw.strip().lower() in ("1", "true", "yes", "on")
        return row.type(raw)
    except ValueError:
        raise ConfigError(f"{row.env}={quoted(raw)} is not a valid {row.type.__name__}.") from None


def settings_table_markdown() -> str:
    """Markdown table of every setting, its default and help (used in the README)."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for row in SETTINGS:
        shown = "" if row.default == "" else str(row.default)
        rows.append(f"| `{row.env}` | `{shown}` | {row.help} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """``python -m sonotag_core.settings NAME...``: the effective value of each setting,
    one a line, for launch scripts (a bad environment fails here, with one line)."""
    names = sys.argv[1:] if argv is None else argv
    known = [r.name for r in SETTINGS]
    unknown = [n for n in names if n not in known]
    if not names or unknown:
        print(
            f"usage: python -m sonotag_core.settings NAME...; NAME is one of: {', '.join(known)}"
            + (f" (not {', '.join(map(quoted, unknown))})" if unknown else ""),
            file=sys.stderr,
        )
        return 2
    try:
        settings = Settings.from_env()
    except SonoTagError as exc:
        print(f"sonotag: error: {one_line(str(exc))}", file=sys.stderr)
        return 1
    for name in names:
        print(getattr(settings, name))
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess in tests
    sys.exit(main())

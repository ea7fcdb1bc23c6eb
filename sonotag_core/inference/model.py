"""Load OpenFLAM v1-base through its real code path, offline-friendly and memory-lean.

``openflam.OpenFLAM("v1-base")`` builds FLAM (HTSAT-base + roberta-base), fetches
``open_flam_oct17.pth`` with ``hf_hub_download`` and roberta-base with ``from_pretrained``
into one cache dir. We build the same FLAM from openflam's own classes and configs and
fetch the same files the same way, with two differences that matter to users:

* ``SONOTAG_CHECKPOINT`` may point at a local ``.pth`` (OpenFLAM() always asks the hub);
* the checkpoint is memory-mapped and assigned in place (``torch.load(mmap=True)`` +
  ``load_state_dict(assign=True)``): same tensors, ~0.7 GB lower peak than a plain load;
* the random initialisation the checkpoint overwrites is skipped (:func:`without_random_init`):
  a strict load replaces every parameter and persistent buffer, so it only cost time
  (~1.5 s of 5 s build on 2 cores). The non-persistent buffers (STFT and mel matrices,
  masks, position indices) are deterministic and still built; a test compares every
  tensor with a normally initialised model.

Missing weights with no reachable hub, or a checkpoint that cannot be read, raise
:class:`ModelError` saying what to fetch. Only the errors that mean that are caught
(:func:`hub_unavailable_errors`, :data:`UNREADABLE_CHECKPOINT`): a bug in our own code
(a ``TypeError``, say) propagates as itself instead of posing as missing weights.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import pickle
import re
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sonotag_core.domain.progress import Progress, ProgressFn, no_progress
from sonotag_core.domain.report import ModelInfo
from sonotag_core.errors import ModelError
from sonotag_core.inference.backend import apply_backend, choose_backend
from sonotag_core.inference.resident import page_out
from sonotag_core.settings import Settings

log = logging.getLogger(__name__)

MODEL_NAME = "openflam-v1-base"
OPENFLAM_REPO = "kechenadobe/OpenFLAM"
CHECKPOINT_FILE = "open_flam_oct17.pth"
TEXT_MODEL = "roberta-base"


def openflam_hook() -> Any:
    """openflam's hook module (importing the package puts its ``module`` on sys.path)."""
    try:
        import openflam  # noqa: F401
        import openflam.hook as hook
    except ImportError as exc:  # pragma: no cover - install problem
        raise ModelError(
            f"The openflam package is not importable ({exc}). Run the README install command."
        ) from exc
    return hook


def openflam_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("openflam")
    except PackageNotFoundError:
        return "unknown"


#: The in-place random fills behind torch.nn.init and HTSAT's own trunc_normal_.
_RANDOM_FILLS = ("uniform_", "normal_", "erfinv_")


@contextlib.contextmanager
def without_random_init() -> Iterator[None]:
    """Make the in-place random fills no-ops while a model whose every weight is about to
    be replaced is built. Process-wide while it lasts (torch has no per-module switch);
    only :func:`load_model` uses it, around construction, before any inference runs."""
    import torch

    saved = {name: getattr(torch.Tensor, name) for name in _RANDOM_FILLS}
    try:
        for name in _RANDOM_FILLS:
            setattr(torch.Tensor, name, lambda self, *a, **k: self)
        yield
    finally:
        for name, fill in saved.items():
            setattr(torch.Tensor, name, fill)


def build_flam(cache_dir: str, *, init: bool = True) -> Any:
    """FLAM exactly as ``OpenFLAM("v1-base")`` builds it (roberta from cache_dir); with
    ``init=False`` the random weights are left unfilled, for a strict load to replace."""
    import lightning as L

    hook = openflam_hook()
    skip = contextlib.nullcontext() if init else without_random_init()
    with warnings.catch_warnings(), skip:  # HTSAT's torch.meshgrid call: noise on every CLI run
        warnings.filterwarnings("ignore", message="torch.meshgrid", category=UserWarning)
        return hook.FLAM(
            audio_cfg=hook.CLAPAudioCfg(model_name="base", audio_embed_dim=1024),
            text_cfg=hook.CLAPTextCfg(connector_layers=12),
            joint_embed_shape=512,
            fabric=L.Fabric(accelerator="cpu", devices=1),
            cache_dir=cache_dir,
        )


def select_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError("SONOTAG_DEVICE asks for CUDA but no GPU is visible; use auto or cpu.")
    return requested


# What torch.load / load_state_dict raise for a file that is not a loadable checkpoint:
# truncated or not a zip (RuntimeError), unreadable (OSError), cut short (EOFError), a
# pickle that weights_only refuses (UnpicklingError), bad header data (ValueError), and
# RuntimeError again for a state dict whose keys or shapes are not OpenFLAM v1-base's.
UNREADABLE_CHECKPOINT: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    RuntimeError,
    ValueError,
    pickle.UnpicklingError,
)


def hub_unavailable_errors() -> tuple[type[BaseException], ...]:
    """What the Hugging Face hub raises when a file is neither cached nor downloadable:
    offline mode, not found, unreachable, refused, a failed transfer. Most are OSError
    subclasses today; they are named so a change in the hub's hierarchy cannot turn them
    into bugs, and nothing broader (no ``Exception``) is caught."""
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        XetAuthorizationError,
        XetDownloadError,
    )

    return (
        OSError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        XetAuthorizationError,
        XetDownloadError,
    )


def missing_weights_message(settings: Settings, detail: str) -> str:
    return (
        f"OpenFLAM weights are not available ({detail}). SonoTag needs "
        f"{OPENFLAM_REPO}/{CHECKPOINT_FILE} and {TEXT_MODEL} in the Hugging Face cache "
        f"directory {settings.model_dir}. Run `sonotag fetch-model` on a machine with internet "
        f"access (it downloads about 1.1 GB there), copy that directory here and set "
        f"SONOTAG_MODEL_DIR to it; or set SONOTAG_CHECKPOINT to a local {CHECKPOINT_FILE} "
        f"(roberta-base must still be in SONOTAG_MODEL_DIR)."
    )


def resolve_checkpoint(settings: Settings, progress: ProgressFn = no_progress) -> Path:
    """Path of the OpenFLAM checkpoint: the local override, else the hub cache (download if
    online, with byte progress: on a fresh volume this is the first start's long wait)."""
    if settings.checkpoint:
        path = Path(settings.checkpoint).expanduser()
        if not path.is_file():
            raise ModelError(f"SONOTAG_CHECKPOINT={settings.checkpoint} is not a file.")
        return path
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(OPENFLAM_REPO, CHECKPOINT_FILE, cache_dir=settings.model_dir)
    unavailable = hub_unavailable_errors()
    try:
        if isinstance(cached, str):  # the usual case: no network, no watcher
            return Path(cached)
        return Path(
            with_download_progress(
                lambda: hf_hub_download(
                    OPENFLAM_REPO, CHECKPOINT_FILE, cache_dir=settings.model_dir
                ),
                hub_blobs(settings.model_dir, OPENFLAM_REPO),
                progress,
                f"Downloading the OpenFLAM weights ({CHECKPOINT_FILE})",
            )
        )
    except unavailable as exc:  # offline, unreachable, not cached: all mean "get the weights"
        log.info("checkpoint lookup failed", exc_info=True)
        raise ModelError(missing_weights_message(settings, type(exc).__name__)) from exc


def hub_blobs(cache_dir: str | Path, repo_id: str) -> Path:
    """Where huggingface_hub writes a model repo's files (``*.incomplete`` while downloading)."""
    return Path(cache_dir) / f"models--{repo_id.replace('/', '--')}" / "blobs"


def with_download_progress(
    fetch: Callable[[], Any],
    blobs: Path,
    progress: ProgressFn,
    message: str,
    *,
    poll_s: float = 0.5,
) -> Any:
    """Run a blocking hub download in a worker thread and report the bytes written so far
    (the ``*.incomplete`` files in ``blobs``) from the calling thread, which is the one a
    UI may draw from. Returns ``fetch()``'s value or raises its exception."""
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            result["value"] = fetch()
        except BaseException as exc:  # handed to the caller below
            result["error"] = exc

    worker = threading.Thread(target=work, name="sonotag-download", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(poll_s)
        done = sum(f.stat().st_size for f in blobs.glob("*.incomplete")) if blobs.is_dir() else 0
        if done:
            progress(Progress("download", done, None, "bytes", message))
    if "error" in result:
        raise result["error"]
    return result.get("value")


def checkpoint_sha256(path: Path) -> str:
    """SHA-256 of the checkpoint; hub-cache blobs are already named by it (LFS), others are hashed."""
    real = Path(path).resolve()
    if real.parent.name == "blobs" and re.fullmatch(r"[0-9a-f]{64}", real.name):
        return real.name
    stat = real.stat()
    return _hashed(str(real), stat.st_mtime_ns, stat.st_size)


def known_checkpoint_sha256(settings: Settings) -> str | None:
    """The checkpoint's SHA-256 without loading or downloading anything; None while the
    weights are not here. Pages look up what is stored for this model (calibrations)
    before the first load, which may still be running or not yet asked for."""
    if settings.checkpoint:
        path = Path(settings.checkpoint).expanduser()
        if not path.is_file():
            return None
    else:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(
            OPENFLAM_REPO, CHECKPOINT_FILE, cache_dir=settings.model_dir
        )
        if not isinstance(cached, str):
            return None
        path = Path(cached)
    return checkpoint_sha256(path)


@functools.lru_cache(maxsize=8)
def _hashed(path: str, mtime_ns: int, size: int) -> str:
    """Hash a file once per version of it (path, mtime, size): a 600-MB override costs
    seconds, and pages ask on every rerun."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class LoadedModel:
    """The OpenFLAM object plus what we know about it. ``lock`` serializes each inference
    call (whole audio encodings queue in :func:`.scheduler.encoder_queue`)."""

    flam: Any  # openflam.OpenFLAM
    device: str
    checkpoint_path: Path
    info: ModelInfo
    threads: int
    #: the exact audio encoder's backend (:mod:`.backend`): "torch" or "onednn"
    backend: str = "torch"
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: the encoder ("audio" or "text") whose weights the last inference call read
    last_used: str = field(default="", repr=False)

    @property
    def net(self) -> Any:
        """The underlying FLAM module."""
        return self.flam.model

    def use_encoder(self, encoder: str) -> None:
        """Call with ``lock`` held, before running ``encoder`` ("audio" or "text"). When
        the other one ran last, its weights leave resident memory (:func:`.resident.page_out`):
        the process then holds one encoder's weights beside the running one's activations,
        not both (about 0.33 GB less at the peak of an encode). The price, only on a switch,
        is reading them back from the page cache: ~0.25 s for the text encoder."""
        if self.last_used and self.last_used != encoder:
            other = "text_branch" if encoder == "audio" else "audio_branch"
            page_out(getattr(self.net, other, None))
        self.last_used = encoder

    def use_threads(self, threads: int) -> None:
        """Run inference on ``threads`` torch threads (process-wide, as torch has it)."""
        import torch

        torch.set_num_threads(threads)
        self.threads = threads


def load_model(settings: Settings, progress: ProgressFn = no_progress) -> LoadedModel:
    """Load OpenFLAM v1-base for inference (see module docstring)."""
    import torch

    hook = openflam_hook()
    torch.set_num_threads(settings.threads)
    device = select_device(settings.device)
    if device.startswith("cuda"):  # the exact path is fp32: no TF32 matmuls or convolutions
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    progress(Progress("model", 0, 3, "steps", "Locating the OpenFLAM checkpoint"))
    ckpt = resolve_checkpoint(settings, progress)
    progress(Progress("model", 1, 3, "steps", "Building OpenFLAM v1-base"))
    flam = hook.OpenFLAM.__new__(hook.OpenFLAM)
    torch.nn.Module.__init__(flam)
    flam.default_ckpt_path = settings.model_dir
    try:  # roberta-base comes from the same cache (downloaded on a fresh volume)
        flam.model = with_download_progress(
            lambda: build_flam(settings.model_dir, init=False),
            hub_blobs(settings.model_dir, TEXT_MODEL),
            progress,
            f"Downloading the text encoder ({TEXT_MODEL})",
        )
    except OSError as exc:  # transformers: roberta-base not cached and hub unreachable
        log.info("text model load failed", exc_info=True)
        raise ModelError(missing_weights_message(settings, f"{TEXT_MODEL} not found")) from exc
    progress(Progress("model", 2, 3, "steps", "Loading weights"))
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)
        if not isinstance(state, Mapping):  # load_state_dict would raise TypeError
            raise ValueError(f"it holds a {type(state).__name__}, not a state dict")
        flam.model.load_state_dict(state, assign=True)
    except UNREADABLE_CHECKPOINT as exc:
        log.info("checkpoint load failed", exc_info=True)
        detail = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise ModelError(
            f"The checkpoint {ckpt} could not be loaded ({detail}). "
            f"It may be truncated or not an OpenFLAM v1-base checkpoint: delete it and run "
            f"`sonotag fetch-model` again."
        ) from exc
    flam.to(device)
    flam.eval()
    backend = choose_backend(settings.backend, device)
    log.info("audio encoder backend %s (%d modules)", backend, apply_backend(flam.model, backend))
    info = ModelInfo(MODEL_NAME, openflam_version(), checkpoint_sha256(ckpt))
    progress(Progress("model", 3, 3, "steps", "Model ready"))
    return LoadedModel(flam, device, ckpt, info, settings.threads, backend=backend)


def fetch_model(settings: Settings, progress: ProgressFn = no_progress) -> Path:
    """Download everything the model needs into ``settings.model_dir`` (needs internet once)."""
    from huggingface_hub import hf_hub_download, snapshot_download

    progress(Progress("model", 0, 2, "steps", f"Downloading {OPENFLAM_REPO}/{CHECKPOINT_FILE}"))
    unavailable = hub_unavailable_errors()
    try:
        ckpt = hf_hub_download(OPENFLAM_REPO, CHECKPOINT_FILE, cache_dir=settings.model_dir)
        progress(Progress("model", 1, 2, "steps", f"Downloading {TEXT_MODEL}"))
        snapshot_download(
            TEXT_MODEL,
            cache_dir=settings.model_dir,
            allow_patterns=[
                "config.json",
                "vocab.json",
                "merges.txt",
                "tokenizer*.json",
                "model.safetensors",
            ],
        )
    except unavailable as exc:  # a bug in this function is not "check the connection"
        log.info("fetch failed", exc_info=True)
        raise ModelError(
            f"Could not download the OpenFLAM weights into {settings.model_dir} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:160] if str(exc) else ''}). Check the internet connection "
            f"(huggingface.co must be reachable) and the free disk space (about 1.1 GB)."
        ) from exc
    progress(Progress("model", 2, 2, "steps", "Model files ready"))
    return Path(ckpt)

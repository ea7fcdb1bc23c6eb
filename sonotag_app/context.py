"""The one module outside ``pages/`` that imports Streamlit: process-wide cached resources
(settings, the model, caches) and the adapter from core progress updates to a progress bar.

Everything cached here is shared by all browser sessions of one server process, so it
must be thread-safe: the model serializes inference with its lock, the caches lock
their dicts.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import streamlit as st

from sonotag_app.keys import KEYS
from sonotag_core import access
from sonotag_core.dashboard import long_links
from sonotag_core.domain.calibration import Calibration
from sonotag_core.domain.progress import Clock, Progress, ProgressFn, no_progress
from sonotag_core.errors import SonoTagError
from sonotag_core.service import runtime
from sonotag_core.service.api import LinkMemo, Service
from sonotag_core.service.runtime import (
    AudioBudget,
    EmbeddingCache,
    LoadedModel,
    RateLimiter,
    SourceInfo,
    Store,
    TextCache,
    audio_overview,
    known_checkpoint_sha256,
    load_model,
    sweep_working_copies,
)
from sonotag_core.settings import Settings

# session_state keys shared by pages

log = logging.getLogger(__name__)


def start_page(name: str) -> None:
    """Every page calls this first, with its name: it notes whether this run came to the
    page from another one (see :func:`take_arrival`) and leaves legacy page mode."""
    ss = st.session_state
    if ss.get(KEYS.page_now) != name:
        ss[KEYS.arrived] = name
        if ss.get(KEYS.long_link, (name,))[0] != name:  # the warning was for the page it left
            del ss[KEYS.long_link]
    ss[KEYS.page_now] = name
    leave_legacy_page_mode()
    _take_long_link(name)
    if name != "analyze" and (held := ss.get(KEYS.long_link)):  # Analyze lists it with the link's
        warning(held[1])


def query_string_limits() -> long_links.QueryLimits | None:
    """What Streamlit accepts of a page's query string before it drops all of it, read
    from Streamlit itself (its internals, 1.67; None if they moved: no redirect then)."""
    try:
        from streamlit.runtime.state import query_params as qp

        return long_links.QueryLimits(
            int(qp.CLIENT_STATE_QUERY_STRING_MAX_FIELDS),
            int(qp.CLIENT_STATE_QUERY_STRING_MAX_LENGTH),
        )
    except (ImportError, AttributeError, TypeError, ValueError):
        return None


def _take_long_link(name: str) -> None:
    """serve.py sent a link too long to restore here with a marker (``?link_fields=5000``):
    keep its warning for this page and take the marker out of the address, so a reload or
    a copied link does not repeat it."""
    markers = [m for m in long_links.MARKERS if m in st.query_params]
    if not markers:
        return
    params = {m: st.query_params.get_all(m) for m in markers}
    for m in markers:
        del st.query_params[m]
    limits = query_string_limits()
    text = long_links.message(params, limits) if limits else None
    if text:
        st.session_state[KEYS.long_link] = (name, text)


def take_long_link_warning() -> str | None:
    """The too-long-link warning for the Analyze page, once: it joins the link's warnings."""
    held = st.session_state.pop(KEYS.long_link, None)
    return held[1] if held else None


def take_arrival(name: str) -> bool:
    """True once after the session came to page ``name`` from another page (a link, the
    sidebar), False on the page's own reruns. Kept until taken, so a run stopped early by
    a click does not lose it.

    This is how a page tells a link that brought new query params from a rerun that only
    carries a stale address: the browser sends its address with every rerun, and one sent
    before it applied the page's latest ``st.query_params`` write (a fragment's timer, a
    quick click on a busy machine) would otherwise read as a new link and reset the
    widgets to what the page showed before."""
    return st.session_state.pop(KEYS.arrived, None) == name


def leave_legacy_page_mode() -> None:
    """Streamlit takes an app with a ``pages/`` folder beside its entry file for an
    old-style multipage app until ``st.navigation`` has run once in the server process,
    and meanwhile runs a requested ``pages/x.py`` directly: the first visitor of a fresh
    server who opens /about or a /library link got that page without the app's
    navigation, title or layout. Turn that mode off and rerun through
    streamlit_app.py, whose navigation then opens the same page.

    Only a session's first run can be such a run on a server (the flag, once off, stays
    off). Checking only then also leaves AppTest alone: it turns the mode back on before
    every run, and a rerun there would swallow the run's click."""
    ss = st.session_state
    if KEYS.nav_checked in ss:
        return
    ss[KEYS.nav_checked] = True
    try:  # Streamlit's internals (1.50-1.67); without them there is nothing to undo
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        st.rerun()


@st.cache_resource(show_spinner=False)
def settings() -> Settings:
    """SONOTAG_* environment, read once per server process."""
    return Settings.from_env()


_loaded: LoadedModel | None = None  # set by model(), read by model_if_loaded()
_model_lock = threading.Lock()


def model(progress: ProgressFn = no_progress) -> LoadedModel:
    """OpenFLAM, loaded once per server process and shared by every session; ``progress``
    shows the first start's weight download. Not an ``st.cache_resource``: a cached
    function replays the elements it drew, and the progress bar belongs to a run that is
    gone. A failed load (ModelError) is not kept: the next run tries again, e.g. after
    the weights were fetched. Other sessions wait on the lock meanwhile."""
    if _loaded is not None:  # the usual case: no "loading" text flashes on every run
        return _loaded
    progress(Progress("model", 0, None, "steps", LOADING_MODEL))
    return _load_once(settings(), progress)


def _load_once(s: Settings, progress: ProgressFn = no_progress) -> LoadedModel:
    """The one load per process: whoever comes second waits on the lock and gets it."""
    global _loaded
    with _model_lock:
        if _loaded is None:
            _loaded = load_model(s, progress)
        return _loaded


LOADING_MODEL = "Loading the model…"
_background: threading.Thread | None = None
_start_lock = threading.Lock()
_background_error: str | None = None  # why the background load failed, for the About page


def start_loading() -> None:
    """Load the model in a background thread now (``serve.py`` calls this as the server
    starts), so the first visitor does not wait for it; the health check and pages answer
    meanwhile, and a run that needs the model waits on the lock showing "Loading the
    model…". A failed load is logged and left for the first run to try again and report."""
    global _background
    with _start_lock:  # not _model_lock: a load in progress holds that one
        if _loaded is not None or (_background is not None and _background.is_alive()):
            return
        _background = threading.Thread(target=_load_quietly, name="sonotag-model-load", daemon=True)
        _background.start()


def _load_quietly() -> None:
    global _background_error
    try:
        _load_once(Settings.from_env())  # no script run here, so not the cached settings()
        log.info("model loaded in the background")
    except Exception as exc:  # noqa: BLE001 - a thread's error would be lost otherwise
        _background_error = str(exc)
        log.warning(
            "loading the model in the background failed (%s); the first analysis tries again", exc
        )


def background_error() -> str | None:
    """Why the background load failed (while the model is still not loaded), else None."""
    return _background_error if _loaded is None else None


def model_loading() -> bool:
    """True while the background load started by :func:`start_loading` is still going."""
    return _loaded is None and _background is not None and _background.is_alive()


def model_loading_note() -> None:
    """ "Loading the model…" while the background load runs, then gone: the note re-checks
    every 2 s and, once the model is ready, reruns the page once, which no longer draws it
    (so nothing keeps ticking)."""
    if model_loading():
        _loading_note()


@st.fragment(run_every=2.0)
def _loading_note() -> None:
    if not model_loading():
        st.rerun(scope="app")
    st.info(
        LOADING_MODEL + " It started with the server; Analyze waits for it.",
        icon=":material/hourglass_top:",
    )


def forget_model() -> None:
    """Drop the loaded model (tests; a changed SONOTAG_MODEL_DIR)."""
    global _loaded
    with _model_lock:
        _loaded = None


def model_if_loaded() -> LoadedModel | None:
    """The model if some session already loaded it; never triggers a load."""
    return _loaded


@st.cache_resource(show_spinner=False)
def text_cache() -> TextCache:
    return TextCache(model())


@st.cache_resource(show_spinner=False)
def embedding_cache() -> EmbeddingCache:
    return EmbeddingCache()


@st.cache_resource(show_spinner=False)
def store() -> Store:
    """The result store under SONOTAG_DATA_DIR, one per server process (thread-safe:
    one SQLite connection per thread)."""
    s = settings()
    store = Store(s.data_dir, media_cap_bytes=s.media_cap_bytes)
    sweep_working_copies(Path(s.data_dir))  # what a restart orphaned, once per process
    return store


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


# GFM turns bare "http://…", "www.…" and "a@b.c" into links after escapes are decoded, so
# escaping cannot stop it; an invisible word joiner (U+2060) inside the pattern does.
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?<=www)(?=\.)|(?<=@)", re.I)
_WORD_JOINER = "\u2060"


def md_text(text: str) -> str:
    """``text`` shown literally where Streamlit renders Markdown: titles of links, upload
    names and typed labels are not ours. "$5 vs $50 *live*" would otherwise turn into
    LaTeX and italics, "![p](http://…)" into an image every visitor's browser fetches,
    and a bare address into a link."""
    return _MD_SPECIAL.sub(r"\\\1", _AUTOLINK.sub(_WORD_JOINER, str(text)))


def error(message: object) -> None:
    """``st.error`` for a message that may repeat a user's or a link's text (a label, a
    file name): shown literally, so ``![p](http://…)`` never becomes an image to fetch."""
    st.error(md_text(str(message)))


def warning(message: object) -> None:
    """``st.warning`` for text that may hold untrusted names: shown literally."""
    st.warning(md_text(str(message)))


def keep_widget_values(keys: list[str]) -> None:
    """Send these widgets' values to the browser with every run, not just the run that set
    them. A value the script seeds (from a share link) otherwise reaches the browser once;
    a click that lands before the browser applied it (a busy server or a slow laptop) makes
    the next run send the widget's empty default back, and the user's labels vanish.
    Re-assigning also keeps the value of a widget hidden for a run (the link box while
    Upload is chosen). Call before the widgets are created."""
    ss = st.session_state
    for key in keys:
        if key in ss:
            ss[key] = ss[key]


@st.cache_resource(show_spinner=False)
def link_memo() -> LinkMemo:
    """Links this server downloaded (bounded), shared by every session."""
    return LinkMemo()


def store_or_none() -> Store | None:
    """The result store, or None when it cannot be opened (the caller shows results anyway)."""
    try:
        return store()
    except SonoTagError:
        return None


def calibrations(labels: Sequence[str]) -> dict[str, Calibration]:
    """Stored calibrated thresholds of these labels for this server's model ({} when the
    weights are not here yet or the store cannot be read: an offer, never a reason to
    fail)."""
    kept = store_or_none()
    if kept is None or not labels:
        return {}
    try:
        sha = checkpoint_sha256()
        return kept.get_calibrations(labels, sha) if sha else {}
    except SonoTagError:
        return {}


def checkpoint_sha256() -> str | None:
    """The model's checkpoint SHA-256, known before the model loads (None when the
    weights are not here yet): what stored calibrations are keyed by."""
    loaded = model_if_loaded()
    if loaded is not None:
        return loaded.info.checkpoint_sha256
    try:
        return known_checkpoint_sha256(settings())
    except OSError:
        return None


def service(
    loaded: LoadedModel, result_store: Store | None, *, fast: bool | None = None
) -> Service:
    """The one service a run goes through, around this process's shared model and caches
    (``fast``: the Analyze page's fast-mode toggle, else SONOTAG_FAST)."""
    s = settings() if fast is None or fast == settings().fast else settings().with_(fast=fast)
    return Service(loaded, s, result_store, text_cache(), embedding_cache(), link_memo())


def fast_mode_offered() -> bool:
    """Whether this server's hardware makes fast mode faster (asked once per process)."""
    return runtime.fast_mode_offered(settings().device)


@st.cache_resource(show_spinner=False)
def rate_limiter() -> RateLimiter:
    return RateLimiter(settings().rate_limit_per_hour)


@st.cache_resource(show_spinner=False)
def audio_budget() -> AudioBudget:
    """Minutes of audio each visitor may have encoded per hour (the same keys as the rate
    limit: :func:`user_keys`); a run charges it inside ``scheduler.charging``."""
    return AudioBudget(settings().audio_minutes_per_hour)


@st.cache_resource(show_spinner=False)
def owner_secret() -> bytes:
    """The key that signs owner cookies (the same one serve.py's middleware uses)."""
    s = settings()
    return access.server_secret(s.data_dir, s.secret)


def _signed_in() -> tuple[str | None, str | None]:
    """(owner, e-mail) of the ``st.login`` account, when the operator configured OIDC and
    the visitor signed in; else (None, None)."""
    try:
        user = st.user
        if user.get("is_logged_in"):
            email = user.get("email")
            who = email or user.get("sub")
            return (f"oidc:{who}" if who else None), (str(email) if email else None)
    except Exception:  # no auth configured (StreamlitAuthError and friends): no account
        pass
    return None, None


def viewer() -> access.Viewer:
    """Who this visitor is (:mod:`sonotag_core.access`): the signed-in account, else the
    owner cookie that serve.py's middleware set, else this browser session alone (a
    browser that refuses cookies, or AppTest)."""
    s = settings()
    account, email = _signed_in()
    owner = account or access.owner_from_cookie(
        st.context.cookies.get(access.COOKIE), owner_secret()
    )
    if owner is None:
        if KEYS.anon_owner not in st.session_state:
            st.session_state[KEYS.anon_owner] = f"session:{secrets.token_hex(16)}"
        owner = st.session_state[KEYS.anon_owner]
    admins = {e.strip().lower() for e in s.admin_emails.split(",") if e.strip()}
    admin = bool(st.session_state.get(KEYS.admin)) or bool(email and email.lower() in admins)
    return access.Viewer(owner, admin=admin, shared=s.access == "shared")


def may_change(analysis_id: str | None) -> bool | None:
    """Whether this visitor may change (delete, review) a stored analysis: None when it
    is not stored (or the store cannot say), else True for its owner or the operator and
    False for someone who reached it through its share link."""
    if not analysis_id:
        return None
    try:
        owner = store().analysis_owner(analysis_id)
    except SonoTagError:
        return None
    return None if owner is None else access.can_change(viewer(), owner)


def client_address() -> str | None:
    """The visitor's address: Streamlit's peer, or X-Forwarded-For behind a proxy that
    SONOTAG_TRUSTED_PROXIES trusts (None on loopback, where Streamlit knows none).

    A proxy on this machine that sends X-Forwarded-For needs no setting: the HTTP server
    under Streamlit (uvicorn) trusts 127.0.0.1 and already gives the forwarded address as
    the peer. One that sends none leaves every visitor at 127.0.0.1 (:func:`sees_loopback`)."""
    headers = st.context.headers
    forwarded = headers.get_all("X-Forwarded-For") if hasattr(headers, "get_all") else []
    nets = access.parse_networks(settings().trusted_proxies)
    return access.client_address(_peer(), forwarded or [], nets)


def sees_loopback() -> bool:
    """Whether this visitor reached the server from loopback with no forwarded address
    (Streamlit reports none): behind a proxy on the same machine that does not send
    X-Forwarded-For, every visitor looks alike, so the limits count by cookie alone."""
    return _peer() is None


def _peer() -> str | None:
    """Streamlit's address of the visitor's connection; None on loopback (Streamlit says
    none there) and in AppTest (which gives a stand-in object, not an address)."""
    ip = st.context.ip_address
    return ip if isinstance(ip, str) and ip else None


def user_keys() -> list[str]:
    """Who the rate limit counts: the owner (a new tab or window of the same browser is
    the same owner) and, when known, the client address (a cleared cookie is not a new
    allowance). An analysis is refused when either has used up its hour."""
    keys = [f"owner:{viewer().owner}"]
    addr = client_address()
    return [*keys, f"ip:{addr}"] if addr else keys


class ProgressBar:
    """Core :class:`Progress` updates -> one ``st.progress`` bar with stage text.

    Byte counts (downloads) are throttled so the websocket is not flooded. The encoder's
    one update per batch never is: Streamlit stops a script (a Cancel click, a closed tab)
    only inside a Streamlit call, so that update is where a cancel lands.
    """

    STAGES = {
        "download": "Downloading",
        "queue": "Queued",
        "decode": "Decoding",
        "encode": "Encoding",
        "labels": "Reading labels",
        "model": "Loading model",
    }

    def __init__(self, min_interval_s: float = 0.2, clock: Clock = time.monotonic) -> None:
        self.bar = st.progress(0.0, text="Starting…")
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._last = float("-inf")

    def __call__(self, p: Progress) -> None:
        now = self._clock()
        final = p.total is not None and p.done >= p.total
        if p.stage != "encode" and not final and now - self._last < self.min_interval_s:
            return
        self._last = now
        self.bar.progress(p.fraction or 0.0, text=md_text(self.describe(p)))

    @classmethod
    def describe(cls, p: Progress) -> str:
        if p.stage == "download" and p.unit == "bytes":
            total = f" of {p.total / 1e6:.1f}" if p.total else ""
            return f"{p.message or 'Downloading'}: {p.done / 1e6:.1f}{total} MB"
        return p.message or cls.STAGES.get(p.stage, p.stage)

    def done(self, text: str) -> None:
        self.bar.progress(1.0, text=md_text(text))

    def clear(self) -> None:
        """Remove the bar: after a failure its last stage ("Locating the checkpoint")
        would read as if the work were still going on."""
        self.bar.empty()


def audio_url(path: str | Path) -> str | None:
    """A signed address of a kept audio file for the player (served by serve.py with
    Range support, so the browser can seek to any instant); None if it cannot be made."""
    from sonotag_core.dashboard import media_links

    s = settings()
    try:
        return media_links.sign_media_url(
            Path(path), secret=owner_secret(), roots=media_links.media_roots(s.data_dir)
        )
    except SonoTagError:
        return None


@st.cache_resource(show_spinner=False, max_entries=8)
def _overview(path: str, content_id: str, data_dir: str) -> dict:
    return audio_overview(path, content_id, data_dir)


def overview(source: SourceInfo) -> dict | None:
    """The waveform and spectrogram the player draws, computed once per audio (kept on
    disk beside the Library), or None when the audio cannot be read any more."""
    try:
        with st.spinner("Drawing the waveform and spectrogram…"):
            return _overview(str(source.path), source.content_id, settings().data_dir)
    except SonoTagError:
        return None

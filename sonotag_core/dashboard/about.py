"""What the About page and `sonotag` report about themselves: versions, licence, citation."""

from __future__ import annotations

from importlib import metadata

LICENCE_NOTE = (
    "The OpenFLAM model and code are under the Adobe Research License: noncommercial "
    "research and teaching use only. Using SonoTag with OpenFLAM inherits that restriction."
)
CITATION = (
    "Yusong Wu, Christos Tsirigotis, Ke Chen, Cheng-Zhi Anna Huang, Aaron Courville, "
    "Oriol Nieto, Prem Seetharaman, Justin Salamon. FLAM: Frame-Wise Language-Audio "
    "Modeling. ICML 2025. arXiv:2505.05335."
)
BIBTEX = """@inproceedings{wu2025flam,
  title     = {{FLAM}: Frame-Wise Language-Audio Modeling},
  author    = {Wu, Yusong and Tsirigotis, Christos and Chen, Ke and Huang, Cheng-Zhi Anna
               and Courville, Aaron and Nieto, Oriol and Seetharaman, Prem and Salamon, Justin},
  booktitle = {International Conference on Machine Learning (ICML)},
  year      = {2025}
}"""
PACKAGES = ("sonotag", "openflam", "torch", "transformers", "yt-dlp", "streamlit", "altair")


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed version of each package ("not installed" if absent)."""
    out = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


MODEL_NOT_LOADED = (
    "The model is not loaded yet: it loads on the first analysis (or press the button)."
)
MODEL_LOADING = "Loading the model… (it started with the server; analyses begin once it is ready)."
MODEL_LOADED = "OpenFLAM v1-base is loaded and shared by every session of this server."
AFTER_ERROR = "Press the button again once that is fixed; the first analysis also tries again."


def model_notices(
    loaded: bool, error: str | None = None, *, loading: bool = False
) -> list[tuple[str, str]]:
    """What the About page says about the model as (kind, text), the most important first:
    a load that failed (missing weights, say) is what the user must act on, so it leads and
    the "loads on first analysis" note, untrue for now, gives way to what to do next."""
    if loaded:
        return [("success", MODEL_LOADED)]
    if error:
        return [("error", error), ("caption", AFTER_ERROR)]
    return [("info", MODEL_LOADING if loading else MODEL_NOT_LOADED)]


def limit_rows(rate_limit: int, audio_minutes: int, audio_left_s: float | None) -> dict[str, str]:
    """The About page's table of per-visitor limits: each setting, its value, and what
    this visitor has left of the audio allowance."""
    from sonotag_core.domain.timefmt import duration

    audio = "no limit"
    if audio_minutes > 0:
        audio = f"{duration(audio_minutes * 60)} of audio per hour"
        if audio_left_s is not None:
            audio += f"; you have {duration(audio_left_s)} left this hour"
    return {
        "analyses (SONOTAG_RATE_LIMIT_PER_HOUR)": f"{rate_limit} per hour"
        if rate_limit > 0
        else "no limit",
        "audio encoded (SONOTAG_AUDIO_MINUTES_PER_HOUR)": audio,
    }


COUNTED_BY_BOTH = (
    "Counted by owner cookie and by client address, so clearing cookies or opening a new "
    "browser does not start a fresh allowance. Relabeling, re-thresholding and opening "
    "stored analyses (reused embeddings) cost nothing."
)
COUNTED_BY_COOKIE = (
    "Counted by owner cookie only: no client address is known for this visit. Relabeling, "
    "re-thresholding and opening stored analyses (reused embeddings) cost nothing."
)
LOOPBACK_ONLY = (
    "For the operator: this server sees its visitors as 127.0.0.1 (a reverse proxy on the "
    "same machine that sends no X-Forwarded-For header, or a local visit), so the rate "
    "limit and the audio allowance can count only by owner cookie: every new browser, "
    "private window or cleared cookie jar gets a fresh allowance. Have the proxy send "
    "X-Forwarded-For (from 127.0.0.1 it is read as it is; a proxy at another address goes "
    "in SONOTAG_TRUSTED_PROXIES); a server for one local user can leave it."
)
LOOPBACK_TRUSTED = " SONOTAG_TRUSTED_PROXIES is set, but no forwarded address reached this server."


def limit_notes(
    *, limited: bool, address_known: bool, loopback: bool, proxies_trusted: bool
) -> list[tuple[str, str]]:
    """What the About page says, as (kind, text), about how the limits tell visitors
    apart: with limits on, a server that sees its visitors only as 127.0.0.1 counts by
    cookie alone, which the operator should know (a warning), not just a visitor."""
    if not limited:
        return []
    if address_known:
        return [("caption", COUNTED_BY_BOTH)]
    if loopback:
        return [("warning", LOOPBACK_ONLY + (LOOPBACK_TRUSTED if proxies_trusted else ""))]
    return [("caption", COUNTED_BY_COOKIE)]

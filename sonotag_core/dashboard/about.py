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

# syntax=docker/dockerfile:1
# SonoTag dashboard image (README "Deploy on Railway").
#
#   docker build -t sonotag .                                 CPU torch; weights fetched on first use
#   docker build --build-arg BAKE_WEIGHTS=1 -t sonotag .      weights inside the image (+1.1 GB)
#   docker build --build-arg TORCH=cu128 -t sonotag-gpu .     CUDA torch (run with --gpus all)
#   docker run -p 8501:8501 -v sonotag-data:/data sonotag
#
# TORCH names a PyTorch wheel index (https://download.pytorch.org/whl/<TORCH>): cpu (default)
# or a CUDA tag that PyTorch publishes for the pinned torch version (cu126, cu128, ...).
# BAKE_WEIGHTS=1 runs `sonotag fetch-model` at build time and makes the model offline-only;
# with 0 the first analysis downloads the weights into the /data volume.
ARG BAKE_WEIGHTS=0

# ---- builder: the virtual environment, made by the same script as the README install ----
FROM python:3.11-slim AS builder
ARG TORCH=cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY scripts/install.sh scripts/
COPY sonotag_core sonotag_core
# gcc compiles sed_scores_eval's Cython extension (an sdist); ffmpeg is a runtime need.
# A regular install, not an editable one.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN SONOTAG_VENV=/opt/venv SONOTAG_EDITABLE=0 SONOTAG_SKIP_APT=1 \
    SONOTAG_TORCH_INDEX="https://download.pytorch.org/whl/${TORCH}" \
    bash scripts/install.sh

# ---- weights: built only when BAKE_WEIGHTS=1 (BuildKit builds only the stages it needs) ----
FROM builder AS weights
RUN SONOTAG_MODEL_DIR=/opt/sonotag/hf-hub SONOTAG_DATA_DIR=/tmp/sonotag /opt/venv/bin/sonotag fetch-model \
    && rm -rf /tmp/sonotag

# ---- runtime: Debian's ffmpeg, the venv, the app; no build tools ----
FROM python:3.11-slim AS runtime
# Debian's ffmpeg, unpinned: the archive keeps only the current (security-patched) version.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 1000 sonotag \
    && useradd --uid 1000 --gid sonotag --create-home --home-dir /home/sonotag --shell /usr/sbin/nologin sonotag \
    && mkdir -p /data \
    && chown sonotag:sonotag /data
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY serve.py streamlit_app.py ui_state.py ui_evaluate.py ui_inputs.py ui_library.py ui_run.py ui_workbench.py ./
COPY frontend frontend
COPY pages pages
COPY .streamlit .streamlit
COPY --chmod=755 scripts/docker-entrypoint.sh /usr/local/bin/sonotag-entrypoint
# No VOLUME instruction (Railway refuses it): mount a volume on /data (docker run -v, Railway volume).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=8501 \
    SONOTAG_DATA_DIR=/data \
    SONOTAG_MODEL_DIR=/data/hf-hub \
    SONOTAG_ACCESS=private
# numeric (= sonotag): platforms that enforce non-root can check it without /etc/passwd
USER 1000:1000
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/_stcore/health' % os.environ.get('PORT', '8501'), timeout=4)"]
ENTRYPOINT ["sonotag-entrypoint"]
# The upload limit comes from the settings table, as in scripts/run.sh (a bad SONOTAG_*
# value stops the container with one line saying which).
CMD ["sh", "-c", "upload_mb=$(python -m sonotag_core.settings max_upload_mb) && exec streamlit run serve.py --server.port \"$PORT\" --server.address 0.0.0.0 --server.headless true --server.fileWatcherType none --browser.gatherUsageStats false --server.maxUploadSize \"$upload_mb\""]

# ---- the image: runtime, plus the baked weights when BAKE_WEIGHTS=1 ----
FROM runtime AS runtime-0

FROM runtime AS runtime-1
COPY --from=weights --chown=sonotag:sonotag /opt/sonotag/hf-hub /opt/sonotag/hf-hub
ENV SONOTAG_MODEL_DIR=/opt/sonotag/hf-hub \
    HF_HUB_OFFLINE=1

# runtime-0 or runtime-1, a stage of this file (hadolint cannot resolve the variable)
# hadolint ignore=DL3006
FROM runtime-${BAKE_WEIGHTS} AS app

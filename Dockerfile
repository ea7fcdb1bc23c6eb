# syntax=docker/dockerfile:1
# SonoTag dashboard image (README "Deploy on Railway").
#
#   docker build -t sonotag .                                 CPU torch; weights fetched on first use
#   docker build --build-arg BAKE_WEIGHTS=1 -t sonotag .      weights inside the image (+1.1 GB)
#   docker build --build-arg TORCH=cu128 -t sonotag-gpu .     CUDA torch (run with --gpus all)
#   docker run -p 8501:8501 -v sonotag-data:/data sonotag
#
# podman and buildah build the same file; give them --format docker, or their default OCI
# format drops the HEALTHCHECK:  podman build --format docker -t sonotag .
# scripts/image-check.sh builds it with whichever of the three is present and checks it runs.
#
# TORCH names a PyTorch wheel index (https://download.pytorch.org/whl/<TORCH>): cpu (default)
# or a CUDA tag that PyTorch publishes for the pinned torch version (cu126, cu128, ...); where
# that index does not answer, scripts/install.sh says so and uses pip's default index.
# BAKE_WEIGHTS=1 runs `sonotag fetch-model` at build time into /opt/sonotag/hf-hub, which the
# entry point then uses offline; with 0 that folder stays empty and the first analysis
# downloads the weights into the /data volume. Every stage below is built either way (no stage
# is chosen by a variable: buildah and podman cannot resolve `FROM stage-${ARG}`).
ARG BAKE_WEIGHTS=0

# ---- builder: the virtual environment, made by the same script as the README install ----
FROM python:3.11-slim AS builder
ARG TORCH=cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# gcc and g++ compile sed_scores_eval's Cython extension (an sdist, in C++: setuptools calls
# g++); ffmpeg is a runtime need.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc g++ libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY scripts/install.sh scripts/
COPY sonotag_core sonotag_core
# A regular install, not an editable one; SLIM drops the packages' own test suites.
RUN SONOTAG_VENV=/opt/venv SONOTAG_EDITABLE=0 SONOTAG_SKIP_APT=1 SONOTAG_SLIM=1 \
    SONOTAG_TORCH_INDEX="https://download.pytorch.org/whl/${TORCH}" \
    bash scripts/install.sh

# ---- weights: `sonotag fetch-model` when BAKE_WEIGHTS=1, an empty folder when 0 ----
FROM builder AS weights
ARG BAKE_WEIGHTS
RUN mkdir -p /opt/sonotag/hf-hub \
    && case "$BAKE_WEIGHTS" in \
         0) ;; \
         1) SONOTAG_MODEL_DIR=/opt/sonotag/hf-hub SONOTAG_DATA_DIR=/tmp/sonotag \
              /opt/venv/bin/sonotag fetch-model && rm -rf /tmp/sonotag ;; \
         *) echo "BAKE_WEIGHTS must be 0 or 1, not '$BAKE_WEIGHTS'" >&2; exit 1 ;; \
       esac

# ---- runtime (the image): Debian's ffmpeg, the venv, the weights folder, the app ----
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
COPY --from=weights --chown=sonotag:sonotag /opt/sonotag/hf-hub /opt/sonotag/hf-hub
WORKDIR /app
# the app: its top-level modules, then its folders
COPY serve.py streamlit_app.py ./
COPY sonotag_app sonotag_app
COPY pages pages
COPY .streamlit .streamlit
COPY --chmod=755 scripts/docker-entrypoint.sh /usr/local/bin/sonotag-entrypoint
# No VOLUME instruction (Railway refuses it): mount a volume on /data (docker run -v, Railway volume).
# SONOTAG_MODEL_DIR is where the first analysis downloads the weights; where
# SONOTAG_BAKED_MODEL_DIR holds baked weights, the entry point uses those instead, offline.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=8501 \
    SONOTAG_DATA_DIR=/data \
    SONOTAG_MODEL_DIR=/data/hf-hub \
    SONOTAG_BAKED_MODEL_DIR=/opt/sonotag/hf-hub \
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

#!/usr/bin/env bash
# Builds the SonoTag image and checks that it runs: one PASS/FAIL line per check, then a
# summary with the build time and the image size; exits non-zero when a check fails.
#
#   bash scripts/image-check.sh               build, then check
#   bash scripts/image-check.sh --no-build    check the image built last time
#
# Builder: the first that works of docker (BuildKit), podman, buildah (SONOTAG_BUILDER=NAME
# picks one). podman and buildah build with --format docker (their OCI default drops the
# HEALTHCHECK); containers run with docker, or podman for both of the others.
#
# Base image: python:3.11-slim as the builder finds it, else pulled; where the registry is
# unreachable (or SONOTAG_STANDIN_BASE=1), a stand-in is made and tagged with its name:
# Debian bookworm from debootstrap --variant=minbase with python3, python3-venv,
# python-is-python3, ca-certificates and libpython3.11-dev (Python 3.11 and its headers, as
# the official image has), labelled org.sonotag.standin. Needs root and debootstrap. Remove
# it (`podman rmi python:3.11-slim`) to build on the real base once the registry answers.
#
# pip inside the build (podman, buildah): this machine's pip settings (`pip config list`:
# local wheel folders, file:// indexes, constraints, certificate bundle) are carried in,
# read-only, as one /etc/pip.conf plus the paths it names; docker builds use the network.
#
# Checks: the HEALTHCHECK is in the image; /_stcore/health answers ok; the server runs as uid
# 1000; a root-owned /data is handed to uid 1000 when started as root (Railway's
# RAILWAY_RUN_UID=0); an unwritable /data stops the container with its message; a real
# `sonotag analyze --format json` of a generated 12-s clip inside the container, on a
# random-weight checkpoint (sonotag_core.testing.random_checkpoint, built by the image
# itself) mounted read-only at the model dir, its JSON read back and checked; nothing of the
# build machine's pip settings is left in the image.
#
# Environment: SONOTAG_IMAGE (default localhost/sonotag:check), SONOTAG_IMAGE_WORK (scratch,
# default /var/tmp/sonotag-image-check), SONOTAG_BUILD_ARGS (more build options, e.g.
# "--build-arg BAKE_WEIGHTS=1"), SONOTAG_DEBIAN_MIRROR (for the stand-in base),
# SONOTAG_PODMAN_FLAGS (podman's global options; default: --cgroup-manager=cgroupfs, plus
# --runtime runc where runc is installed).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="${SONOTAG_IMAGE:-localhost/sonotag:check}"
WORK="${SONOTAG_IMAGE_WORK:-/var/tmp/sonotag-image-check}"
BASE="docker.io/library/python:3.11-slim"
MIRROR="${SONOTAG_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
build=1
case "${1:-}" in
  --no-build) build=0 ;;
  "") ;;
  *) echo "usage: bash scripts/image-check.sh [--no-build]" >&2; exit 2 ;;
esac

passed=0 failed=0
pass() { passed=$((passed + 1)); printf 'PASS  %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$*"; }
note() { printf '      %s\n' "$*"; }
seconds() { printf '%d min %02d s' $(($1 / 60)) $(($1 % 60)); }
builder="" base_kind="" build_s="" size=""
summary() {
  printf '\nimage-check: %s: %d passed, %d failed; builder %s; base %s; build %s; image %s (%s)\n' \
    "$([ "$failed" = 0 ] && echo PASS || echo FAIL)" "$passed" "$failed" "${builder:-none}" \
    "${base_kind:-?}" "${build_s:-not built}" "${size:-?}" "$IMAGE"
}
die() { fail "$@"; summary; exit 1; }

# ---- the builder and the runner -------------------------------------------------------
podman_flags=()
if [ -n "${SONOTAG_PODMAN_FLAGS+set}" ]; then
  read -r -a podman_flags <<<"$SONOTAG_PODMAN_FLAGS"
else
  podman_flags=(--cgroup-manager=cgroupfs)
  if command -v runc >/dev/null 2>&1; then podman_flags+=(--runtime runc); fi
fi
works() {
  case "$1" in
    docker) command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 ;;
    podman) command -v podman >/dev/null 2>&1 && podman "${podman_flags[@]}" info >/dev/null 2>&1 ;;
    buildah) command -v buildah >/dev/null 2>&1 && buildah info >/dev/null 2>&1 ;;
    *) return 1 ;;
  esac
}
builder=""
for candidate in ${SONOTAG_BUILDER:-docker podman buildah}; do
  if works "$candidate"; then builder="$candidate"; break; fi
done
[ -n "$builder" ] || die "builder: none of ${SONOTAG_BUILDER:-docker, podman, buildah} works here"
if [ "$builder" = docker ]; then runner=docker; else runner=podman; fi
[ "$runner" = docker ] || command -v podman >/dev/null 2>&1 \
  || die "containers: $builder builds images but does not run them; install podman"
run_tool() {
  if [ "$runner" = podman ]; then podman "${podman_flags[@]}" "$@"; else docker "$@"; fi
}
# Containers share the host's network (no port mapping to set up; PORT is a free port) and
# get explicit ulimits (podman's defaults can exceed what a nested machine allows).
limits=(--ulimit nofile=4096:4096 --ulimit nproc=4096:4096)
run_flags=(--network host "${limits[@]}")
# one-off containers: no health check (podman would try to set up a systemd timer for it)
once=(--rm --no-healthcheck "${run_flags[@]}")
image_exists() {
  case "$builder" in
    buildah) buildah inspect --type image "$1" >/dev/null 2>&1 ;;
    *) run_tool image inspect "$1" >/dev/null 2>&1 ;;
  esac
}
mkdir -p "$WORK"
echo "image-check: builder $builder, containers by $runner, scratch $WORK"

# ---- the base image -------------------------------------------------------------------
make_standin() {
  [ "$(id -u)" = 0 ] || die "base: the registry is unreachable and a stand-in needs root (debootstrap)"
  command -v debootstrap >/dev/null 2>&1 || die "base: the registry is unreachable; install debootstrap for a stand-in"
  local rootfs="$WORK/base-rootfs"
  rm -rf "$rootfs"
  echo "base: debootstrap bookworm (minbase + python3.11) from $MIRROR" >&2
  debootstrap --variant=minbase \
    --include=python3,python3-venv,python-is-python3,ca-certificates,libpython3.11-dev \
    bookworm "$rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || die "base: debootstrap failed (log: $WORK/debootstrap.log)"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
  local changes=(--change "ENV LANG=C.UTF-8" --change 'CMD ["python3"]'
    --change "LABEL org.sonotag.standin=debian-bookworm-minbase-python3.11")
  if [ "$builder" = docker ]; then
    tar -C "$rootfs" -c . | docker import "${changes[@]}" - "$BASE" >/dev/null
  elif command -v podman >/dev/null 2>&1; then
    tar -C "$rootfs" -c . | podman "${podman_flags[@]}" import -q "${changes[@]}" - "$BASE" >/dev/null
  else
    local ctr mnt
    ctr="$(buildah from scratch)"
    mnt="$(buildah mount "$ctr")"
    tar -C "$rootfs" -c . | tar -C "$mnt" -x
    buildah umount "$ctr" >/dev/null
    buildah config --env LANG=C.UTF-8 --cmd python3 \
      --label org.sonotag.standin=debian-bookworm-minbase-python3.11 "$ctr"
    buildah commit -q "$ctr" "$BASE" >/dev/null
    buildah rm "$ctr" >/dev/null
  fi
  rm -rf "$rootfs"
}
pull_base() {
  case "$builder" in
    buildah) timeout 300 buildah pull -q "$BASE" ;;
    *) timeout 300 run_tool pull -q "$BASE" ;;
  esac
}
if [ "$build" = 1 ]; then
  if [ "${SONOTAG_STANDIN_BASE:-0}" != 1 ] && image_exists "$BASE"; then
    :
  elif [ "${SONOTAG_STANDIN_BASE:-0}" != 1 ] && pull_base >/dev/null 2>&1; then
    :
  else
    made=$SECONDS
    make_standin
    note "base: the registry is unreachable; made a stand-in in $(seconds $((SECONDS - made)))"
  fi
fi
if image_exists "$BASE"; then
  if [ "$builder" = buildah ]; then
    labels="$(buildah inspect --type image --format '{{.Docker.Config.Labels}}' "$BASE")"
  else
    labels="$(run_tool image inspect --format '{{.Config.Labels}}' "$BASE")"
  fi
  case "$labels" in
    *org.sonotag.standin*) base_kind="stand-in (Debian bookworm minbase, Python 3.11)" ;;
    *) base_kind="$BASE" ;;
  esac
  note "base: $base_kind"
fi

# ---- this machine's pip settings, for a build without the network's indexes ----------
pip_mounts=()
carry_pip() {
  local py conf="$WORK/pip.conf"
  py="$(command -v python3 || true)"
  [ -n "$py" ] && "$py" -m pip --version >/dev/null 2>&1 || return 0
  # one [global] section from every source pip reads (files and PIP_* variables); local
  # paths named in it are listed as read-only mounts (SOURCE:TARGET), the same place but for
  # the certificate bundle, which goes beside the image's own
  "$py" - "$conf" >"$WORK/pip-paths" <<'PY'
import os, subprocess, sys
out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True,
                     text=True, check=True).stdout
values, paths = {}, set()
for line in out.splitlines():
    key, _, value = line.partition("=")
    name = key.rsplit(".", 1)[-1]
    value = value.strip().strip("'\"")
    if name == "cert" and os.path.isfile(value):
        # the bundle pip trusts here (it may hold a proxy's CA): beside the image's own
        paths.add(f"{value}:/tmp/host-pip-ca.pem")
        value = "/tmp/host-pip-ca.pem"
    else:
        for word in value.split():
            path = word
            if word.startswith("file://"):  # an index: its files usually lie beside it
                path = os.path.dirname(word[len("file://"):].rstrip("/"))
            if path.startswith("/") and os.path.exists(path):
                paths.add(f"{path}:{path}")
    values[name] = value
if values:
    with open(sys.argv[1], "w") as fh:
        fh.write("[global]\n" + "".join(f"{k} = {v}\n" for k, v in sorted(values.items())))
    print("\n".join(sorted(paths)))
PY
  [ -s "$conf" ] || return 0
  pip_mounts=(-v "$conf:/etc/pip.conf:ro")
  local pair
  while IFS= read -r pair; do
    [ -n "$pair" ] && pip_mounts+=(-v "$pair:ro")
  done <"$WORK/pip-paths"
  note "pip settings carried in (read-only): $(cut -d: -f1 "$WORK/pip-paths" | tr '\n' ' ')"
}

[ "$builder" = docker ] || carry_pip

# ---- build ----------------------------------------------------------------------------
read -r -a extra_build <<<"${SONOTAG_BUILD_ARGS:-}"
if [ "$build" = 1 ]; then
  echo "build: $IMAGE (log: $WORK/build.log)"
  start=$SECONDS
  status=0
  # podman and buildah mount the pip settings into every RUN of every stage, and (buildah
  # 1.28) leave the mount points behind as empty files and folders; they are not part of
  # the layer cache's key. So the builder stage (the only one that runs pip) is built with
  # them first, and the image without them, on that cached builder.
  build_with() {
    case "$builder" in
      docker) DOCKER_BUILDKIT=1 docker build "$@" "$context" ;;
      podman) podman "${podman_flags[@]}" build --format docker --network host "${limits[@]}" "$@" "$context" ;;
      buildah) buildah bud --format docker --isolation chroot --network host "$@" "$context" ;;
    esac
  }
  # The build context is a snapshot of the working tree (git's tracked and unignored files,
  # .dockerignore applies on top): both builds see the same files, whatever changes meanwhile.
  context="$WORK/context"
  rm -rf "$context"
  mkdir -p "$context"
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
      if [ -e "$f" ]; then printf '%s\0' "$f"; fi
    done | tar --null -T - -c | tar -x -C "$context"
  else
    tar -c . | tar -x -C "$context"
  fi
  : >"$WORK/build.log"
  if [ "${#pip_mounts[@]}" -gt 0 ]; then
    build_with "${pip_mounts[@]}" --target builder ${extra_build[@]+"${extra_build[@]}"} \
      >>"$WORK/build.log" 2>&1 || status=$?
  fi
  if [ "$status" = 0 ]; then
    build_with -t "$IMAGE" ${extra_build[@]+"${extra_build[@]}"} >>"$WORK/build.log" 2>&1 || status=$?
  fi
  build_s="$(seconds $((SECONDS - start)))"
  if [ "$status" != 0 ]; then
    tail -n 30 "$WORK/build.log" | sed 's/^/      | /'
    die "build: $builder failed after $build_s (exit $status; log: $WORK/build.log)"
  fi
  pass "build: $builder built $IMAGE in $build_s"
  grep -E '^install: (slim|torch|warning)' "$WORK/build.log" | sed 's/^/      /' || true
fi
image_exists "$IMAGE" || die "image: $IMAGE is not there (build it: drop --no-build)"
bytes="$(run_tool image inspect --format '{{.Size}}' "$IMAGE")"
size="$(awk -v b="$bytes" 'BEGIN { printf "%.2f GB", b / 1e9 }')"

# ---- checks ---------------------------------------------------------------------------
name="sonotag-check-$$"
volume="sonotag-check-data-$$"
cleanup() {
  run_tool rm -f "$name" >/dev/null 2>&1 || true
  run_tool volume rm -f "$volume" >/dev/null 2>&1 || true
}
trap cleanup EXIT

if run_tool image inspect "$IMAGE" | grep -q '_stcore/health'; then
  pass "healthcheck: the image keeps its HEALTHCHECK (/_stcore/health)"
else
  fail "healthcheck: no HEALTHCHECK in the image (podman/buildah: build with --format docker)"
fi

where="$(run_tool run "${once[@]}" --entrypoint du "$IMAGE" -smc /opt/venv /usr /opt/sonotag 2>/dev/null \
  | awk '{ printf "%s%s %s MB", sep, $2, $1; sep = ", " }')"
note "image size $size: $where"

# A random-weight checkpoint in the Hugging Face layout, built by the image's own code.
model="$WORK/model"
rm -rf "$model"
mkdir -p "$model"
if run_tool run "${once[@]}" --user 0 -e HF_HUB_OFFLINE=1 -v "$model:/model" \
  --entrypoint python "$IMAGE" -c \
  'from sonotag_core.testing.random_checkpoint import build_random_checkpoint as b; b("/model", text_layers=2, vocab_size=1000)' \
  >"$WORK/checkpoint.log" 2>&1; then
  note "random-weight checkpoint: $(du -sh "$model" | cut -f1) in $model"
else
  sed 's/^/      | /' "$WORK/checkpoint.log" | tail -n 20
  fail "checkpoint: building the random-weight checkpoint in the image failed"
fi

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
  || echo $((20000 + RANDOM % 20000)))"
run_tool volume create "$volume" >/dev/null
started=$SECONDS
# The image's HEALTHCHECK stays (podman runs it on demand below; without systemd, podman
# says on stderr that it cannot set up its timer: that goes to the log).
run_tool run -d --name "$name" "${run_flags[@]}" -e PORT="$port" -e HF_HUB_OFFLINE=1 \
  -v "$volume:/data" -v "$model:/data/hf-hub:ro" "$IMAGE" >/dev/null 2>"$WORK/run.log" \
  || { sed 's/^/      | /' "$WORK/run.log"; fail "start: the container did not start"; }
health=""
while [ $((SECONDS - started)) -lt 120 ]; do
  health="$(run_tool exec "$name" python -c \
    "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$port/_stcore/health', timeout=4).read().decode())" \
    2>/dev/null || true)"
  [ "$health" = ok ] && break
  [ "$(run_tool inspect --format '{{.State.Running}}' "$name" 2>/dev/null)" = true ] || break
  sleep 1
done
if [ "$health" = ok ]; then
  extra=""
  if [ "$runner" = podman ] && podman "${podman_flags[@]}" healthcheck run "$name" >/dev/null 2>&1; then
    extra="; podman healthcheck run: healthy"
  fi
  pass "health: /_stcore/health answered ok $((SECONDS - started)) s after start (PORT=$port)$extra"
else
  run_tool logs "$name" 2>&1 | tail -n 20 | sed 's/^/      | /'
  fail "health: no ok from /_stcore/health within 120 s"
fi

server_uid="$(run_tool exec "$name" sh -c "awk '/^Uid:/ { print \$2 }' /proc/1/status" 2>/dev/null || true)"
exec_uid="$(run_tool exec "$name" id -u 2>/dev/null || true)"
if [ "$server_uid" = 1000 ] && [ "$exec_uid" = 1000 ]; then
  pass "uid: the server (pid 1) and commands run as uid 1000"
else
  fail "uid: server uid '${server_uid}', command uid '${exec_uid}' (expected 1000)"
fi

# /data as Railway mounts it: a root-owned folder, the container started as root.
rooted="$WORK/data-root"
rm -rf "$rooted"
mkdir -p "$rooted/hf-hub"
echo x >"$rooted/hf-hub/left-by-root"
chmod 755 "$rooted" "$rooted/hf-hub"
handed="$(run_tool run "${once[@]}" --user 0 -v "$rooted:/data" "$IMAGE" \
  sh -c 'id -u; stat -c %u /data /data/hf-hub /data/hf-hub/left-by-root' 2>&1 | tr '\n' ' ')"
if [ "$handed" = "1000 1000 1000 1000 " ]; then
  pass "data: a root-owned /data is handed to uid 1000 and root is dropped"
else
  fail "data: started as root on a root-owned /data: '$handed' (expected uid 1000, all owned by 1000)"
fi

# /data mounted unwritable for the image's user: refused, with what to do.
locked="$WORK/data-locked"
rm -rf "$locked"
mkdir -p "$locked"
chmod 755 "$locked"
refused_rc=0
refused="$(run_tool run "${once[@]}" -v "$locked:/data" "$IMAGE" echo started 2>&1)" || refused_rc=$?
if [ "$refused_rc" = 1 ] && [[ "$refused" == *"is not writable"* ]] \
  && [[ "$refused" == *RAILWAY_RUN_UID=0* ]] && [[ "$refused" != *started* ]]; then
  pass "data: an unwritable /data is refused: $(printf '%s' "$refused" | head -n 1)"
else
  fail "data: unwritable /data gave exit $refused_rc: $refused"
fi

# A real analysis inside the container: a 12-s clip (6 s of a 1 kHz tone, 6 s of noise).
analysis="$WORK/analysis.json"
rm -f "$analysis"
took=$SECONDS
if run_tool exec "$name" ffmpeg -nostdin -loglevel error -y \
  -f lavfi -i "sine=frequency=1000:sample_rate=48000:duration=6" \
  -f lavfi -i "anoisesrc=color=white:sample_rate=48000:duration=6:amplitude=0.3" \
  -filter_complex "[0:a][1:a]concat=n=2:v=0:a=1" -ac 1 /tmp/clip.wav \
  && run_tool exec "$name" sonotag analyze /tmp/clip.wav --labels "a beep;white noise" \
    --format json -q >"$analysis" 2>"$WORK/analyze.log"; then
  took=$((SECONDS - took))
  # read back here (python3), or by the image's Python where this machine has none
  read_back=(python3 -c)
  command -v python3 >/dev/null 2>&1 || read_back=(run_tool exec -i "$name" python -c)
  checkpoint="$(find -L "$model" -name open_flam_oct17.pth -type f -exec sha256sum {} + | cut -c1-64)"
  if verdict="$("${read_back[@]}" "$(cat <<'PY'
import json, math, sys
r = json.load(sys.stdin)
assert r["model"]["checkpoint_sha256"] == sys.argv[1], ("not the mounted checkpoint", r["model"])
assert r["labels"] == ["a beep", "white noise"], r["labels"]
assert abs(r["duration_s"] - 12.0) < 0.05, r["duration_s"]
assert r["frame_s"] == 0.3125, r["frame_s"]
times, probs = r["frame_times_s"], r["probabilities"]
assert len(probs) == 2 and all(len(row) == len(times) for row in probs)
assert 36 <= len(times) <= 39 and times[0] == 0 and times[-1] < r["duration_s"], times[-3:]
assert all(isinstance(p, float) and math.isfinite(p) and 0 <= p <= 1 for row in probs for p in row)
assert sorted(c["label"] for c in r["clip_scores"]) == sorted(r["labels"]), r["clip_scores"]
assert all(0 <= e["onset_s"] < e["offset_s"] <= r["duration_s"] + 1e-6 for e in r["events"])
assert r["model"], "no model record"
print(f"{len(r['labels'])} labels x {len(times)} frames, {r['duration_s']:.2f} s, "
      f"{len(r['events'])} events, the mounted checkpoint, sonotag {r['sonotag_version']}")
PY
)" "$checkpoint" <"$analysis" 2>&1)"; then
    pass "analysis: sonotag analyze --format json in the container ($took s): $verdict"
  else
    fail "analysis: the JSON did not check out: $verdict"
  fi
else
  sed 's/^/      | /' "$WORK/analyze.log" | tail -n 20
  fail "analysis: sonotag analyze failed in the container"
fi

# Nothing of this machine's pip settings stays in the image (the build mounted them).
if [ "${#pip_mounts[@]}" -gt 0 ]; then
  mapfile -t carried < <(cut -d: -f2 "$WORK/pip-paths")
  # shellcheck disable=SC2016 # "$@" and "$p" are the container shell's
  left="$(run_tool run "${once[@]}" --entrypoint sh "$IMAGE" -c \
    'for p in "$@"; do if [ -e "$p" ]; then echo "$p"; fi; done' sh /etc/pip.conf \
    ${carried[@]+"${carried[@]}"} 2>&1 | tr '\n' ' ')"
  if [ -z "$left" ]; then
    pass "clean: none of the build machine's pip settings is left in the image"
  else
    fail "clean: left in the image from the build's mounts: $left"
  fi
fi

summary
[ "$failed" = 0 ]

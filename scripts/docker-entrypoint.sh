#!/bin/sh
# The image's ENTRYPOINT: runs the command (the CMD: streamlit) as the unprivileged user with a
# writable data directory ($SONOTAG_DATA_DIR, /data in the image).
#
# Started as root (Railway does so when RAILWAY_RUN_UID=0, which it needs because it mounts
# volumes owned by root): gives the data directory to $SONOTAG_USER (default sonotag), then
# drops to that user. Started as that user (the image's USER, e.g. plain `docker run`): only
# checks that the data directory is writable and says what to do when it is not.
#
# Weights baked into the image (BAKE_WEIGHTS=1: files in $SONOTAG_BAKED_MODEL_DIR) are used,
# offline, while SONOTAG_MODEL_DIR is the image's own /data/hf-hub; a SONOTAG_MODEL_DIR set to
# another folder wins. (`docker exec` bypasses this script: run `sonotag-entrypoint sonotag ...`.)
set -eu
user="${SONOTAG_USER:-sonotag}"
data="${SONOTAG_DATA_DIR:-/data}"
image_model_dir=/data/hf-hub  # the Dockerfile's SONOTAG_MODEL_DIR

baked="${SONOTAG_BAKED_MODEL_DIR:-}"
if [ -n "$baked" ] && [ "${SONOTAG_MODEL_DIR:-$image_model_dir}" = "$image_model_dir" ] \
  && [ -n "$(ls -A "$baked" 2>/dev/null)" ]; then
  export SONOTAG_MODEL_DIR="$baked" HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
fi

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$data"
  # only what is not the user's yet (a fresh volume, files left by a run as root): cheap on
  # restarts. "$user:" is the user and its login group.
  find "$data" ! -user "$user" -exec chown -h "$user:" {} +
  exec python -c '
import os, pwd, sys
u = pwd.getpwnam(sys.argv[1])
os.setgroups([])
os.setgid(u.pw_gid)
os.setuid(u.pw_uid)
os.environ.update(HOME=u.pw_dir, USER=u.pw_name, LOGNAME=u.pw_name)
os.execvp(sys.argv[2], sys.argv[2:])
' "$user" "$@"
fi

mkdir -p "$data" 2>/dev/null || true
if [ ! -w "$data" ]; then
  echo "sonotag: the data directory $data is not writable by $(id -un 2>/dev/null || id -u)." >&2
  echo "sonotag: on Railway, set the service variable RAILWAY_RUN_UID=0 (volumes are mounted" >&2
  echo "sonotag: owned by root; this entrypoint then hands $data to '$user' and drops root)." >&2
  echo "sonotag: with docker run, use a named volume or chown the mounted directory to uid $(id -u)." >&2
  exit 1
fi
exec "$@"

# Shared helpers of steward's build scripts. Source it after setting LOG_NAME.
# shellcheck shell=bash

log() { printf '[%s] %s\n' "$LOG_NAME" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
# Seconds since an epoch timestamp, for timings: `since "$start"` → "12s".
since() { echo "$(($(date +%s) - $1))s"; }
image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

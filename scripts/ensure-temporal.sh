#!/usr/bin/env bash
# Prints the absolute path of a usable `temporal` CLI on stdout; everything else goes to stderr.
# Idempotent and non-interactive (fine under CI=true with no stdin). Looks, in order, at:
#   1. $STEWARD_TEMPORAL_BIN, if it is an executable file
#   2. `temporal` on PATH
#   3. ${XDG_CACHE_HOME:-$HOME/.cache}/steward/bin/temporal
#   4. builds 3. with `go install` when `go` exists (minutes, a few GB of RAM; once per machine)
# With none of these it prints nothing and exits 0: @temporalio/testing then downloads the server itself,
# which needs internet access.
set -euo pipefail

# The newest CLI tag `go install` accepts: v1.6.0+ carry a `replace` directive in go.mod. Embeds server 1.29.1,
# SQLite persistence and the Web UI.
readonly TEMPORAL_CLI_MODULE=github.com/temporalio/cli/cmd/temporal@v1.5.1
readonly cache_bin="${XDG_CACHE_HOME:-$HOME/.cache}/steward/bin"

log() { printf 'ensure-temporal: %s\n' "$*" >&2; }
found() {
  log "using $1"
  printf '%s\n' "$1"
  exit 0
}

if [[ -n "${STEWARD_TEMPORAL_BIN:-}" ]]; then
  if [[ -f "$STEWARD_TEMPORAL_BIN" && -x "$STEWARD_TEMPORAL_BIN" ]]; then found "$(realpath "$STEWARD_TEMPORAL_BIN")"; fi
  log "ignoring STEWARD_TEMPORAL_BIN=$STEWARD_TEMPORAL_BIN: not an executable file"
fi
if on_path="$(command -v temporal)"; then found "$(realpath "$on_path")"; fi
if [[ -x "$cache_bin/temporal" ]]; then found "$cache_bin/temporal"; fi

go_bin="$(command -v go || true)"
if [[ -z "$go_bin" && -x /usr/local/go/bin/go ]]; then go_bin=/usr/local/go/bin/go; fi
if [[ -z "$go_bin" ]]; then
  log "no temporal CLI and no Go toolchain: the Temporal SDK will download the dev server (needs internet)"
  exit 0
fi

mkdir -p "$cache_bin"
# One build at a time per machine; a second caller waits and then finds the binary.
if command -v flock >/dev/null; then
  exec 9>"$cache_bin/.build.lock"
  flock 9
  if [[ -x "$cache_bin/temporal" ]]; then found "$cache_bin/temporal"; fi
fi

log "building $TEMPORAL_CLI_MODULE into $cache_bin with $go_bin; this takes several minutes, once per machine"
build_dir="$(mktemp -d "$cache_bin/.build.XXXXXX")"
trap 'rm -rf "$build_dir"' EXIT
started=$SECONDS
# Build beside the final path and rename, so nobody ever runs a half-written binary.
if GOBIN="$build_dir" "$go_bin" install "$TEMPORAL_CLI_MODULE" </dev/null >&2; then
  mv "$build_dir/temporal" "$cache_bin/temporal"
  log "built in $((SECONDS - started)) s"
  found "$cache_bin/temporal"
fi
log "go install failed after $((SECONDS - started)) s (see above); the Temporal SDK will download the dev server instead"
exit 0

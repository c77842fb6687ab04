#!/usr/bin/env bash
# Installs and starts what steward's demo and tests need on a Debian machine, skipping what is already there:
# Debian packages (docker.io, debootstrap, docker-compose, restic for backups, chromium for the Web UI test, prometheus for the alert
# rules, openssl for the TLS tests), a running Docker engine, npm dependencies, the Temporal CLI and the VPS simulator
# image. Safe to run again. Works non-interactively (CI=true, no stdin).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }
started=$(date +%s)
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

# Node.js: the machine's own; steward needs 20.19 or newer.
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' ||
  { say "Node.js >= 20.19 is required (found $(node --version 2>/dev/null || echo none))"; exit 1; }

# Debian packages.
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v docker-compose >/dev/null || missing+=(docker-compose) # docker-compose.dev.yml (make cluster) and its test
command -v restic >/dev/null || missing+=(restic) # backups: the worker runs restic against the repository
{ [ -x /usr/bin/prometheus ] && command -v promtool >/dev/null; } || missing+=(prometheus) # alert rules: promtool, a test server
command -v openssl >/dev/null || missing+=(openssl) # the tests of TLS connections to Temporal make certificates
[ -x /usr/bin/chromium ] || missing+=(chromium) # the Web UI test drives Debian's Chromium, never a downloaded one
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  # The tests start their own Prometheus on loopback; the package's service (all interfaces, :9090) stays off.
  if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
    as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi

# A running Docker engine: systemd's when the machine has one, else dockerd in the background.
if ! docker info >/dev/null 2>&1; then
  if [ -d /run/systemd/system ]; then
    as_root systemctl start docker
  else
    say "starting dockerd (log: /var/log/steward-dockerd.log)"
    as_root sh -c 'nohup dockerd >>/var/log/steward-dockerd.log 2>&1 &'
  fi
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { say "dockerd did not start; see /var/log/steward-dockerd.log"; exit 1; }
fi

# npm dependencies, when the lock file changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies"
  npm ci --no-audit --no-fund >&2
fi

# The CLI compiled to JavaScript (dist/cli), so no command compiles TypeScript at start; under a second.
node scripts/build-cli.mjs >&2

# The Temporal CLI (dev server + UI): from PATH, the cache, or built once from the Go module proxy.
bash scripts/ensure-temporal.sh >/dev/null

# The VPS simulator image, built offline from Debian's packages.
bash scripts/build-vps-image.sh >&2

# The stack images deploy streams to hosts (OpenClaw + mem0 plugin from npm, Caddy from Debian); ~6 min when cold.
bash scripts/build-stack-images.sh >&2
say "ready in $(($(date +%s) - started)) s"

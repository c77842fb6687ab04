#!/usr/bin/env bash
# docker-compose.dev.yml with everything it reads made first; idempotent (`make cluster` runs `up`).
#
#   scripts/cluster.sh up          binaries, certificates, images, containers, namespace, the VPS's spec
#   scripts/cluster.sh down [-v]   stops and removes the containers (-v: the database and the VPS's disk too)
#   scripts/cluster.sh compose …   docker-compose on this project, e.g. `compose logs temporal`, `compose restart temporal`
#
# What it makes, in ${STEWARD_CLUSTER_DIR:-.steward/cluster} (mode 0700):
#   ca/                 the cluster's CA (its key never leaves this directory)
#   tls/temporal/       the frontend's server certificate and the server's system-worker client certificate
#   tls/temporal-ui/    the Web UI's client certificate;  tls/steward/: steward's client certificate (0600)
#   db-password         PostgreSQL's password (a compose secret; like the keys under tls/temporal*, mode 0644 so the
#                       containers' own users can read it: the 0700 state directory keeps everyone else out)
#   temporal.toml       profile `cluster` for steward and the temporal CLI (address, TLS files, server name)
#   steward.yaml, keys/ the spec of the VPS (`steward init`), its host key pinned as read from the container
# Binaries are built once per machine from Go modules into ${XDG_CACHE_HOME:-~/.cache}/steward/bin (a few minutes).
# STEWARD_CLUSTER_PROJECT names the compose project (default steward-cluster); STEWARD_CLUSTER_FRONTEND, _UI and _SSH
# move the published ports (an address without a port, e.g. `127.0.0.1:`, takes a free one).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly LOG_NAME=cluster
# shellcheck source=lib.sh
. "$repo_root/scripts/lib.sh"

readonly SERVER_VERSION=v1.29.1 # the server the Temporal CLI's dev server embeds
readonly UI_VERSION=v2.42.1
readonly CERT_DAYS=397
readonly RENEW_WITHIN_S=$((30 * 24 * 3600))
readonly READY_TIMEOUT_S=120
readonly VPS_HOST=cluster-vps

STEWARD_CLUSTER_DIR=$(realpath -m "${STEWARD_CLUSTER_DIR:-$repo_root/.steward/cluster}")
export STEWARD_CLUSTER_DIR
readonly STATE=$STEWARD_CLUSTER_DIR
readonly PROJECT=${STEWARD_CLUSTER_PROJECT:-steward-cluster}
readonly cache_bin=${XDG_CACHE_HOME:-$HOME/.cache}/steward/bin

# Debian 12's docker-compose 1.29, else Compose v2's `docker compose`.
compose() {
  local cmd=(docker-compose)
  command -v docker-compose >/dev/null || cmd=(docker compose)
  "${cmd[@]}" --project-directory "$repo_root" -f "$repo_root/docker-compose.dev.yml" -p "$PROJECT" "$@"
}

# Builds `go install $2` once per machine into the cache as $1 (beside the final path, then renamed).
ensure_go_binary() {
  local name=$1 package=$2
  [[ -x $cache_bin/$name ]] && return 0
  command -v go >/dev/null || die "$name is not built and there is no Go toolchain to build $package"
  mkdir -p "$cache_bin"
  exec 8>"$cache_bin/.cluster-build.lock"
  flock 8
  if [[ ! -x $cache_bin/$name ]]; then
    local gobin start
    gobin=$(mktemp -d "$cache_bin/.build.XXXXXX")
    start=$(date +%s)
    log "building $package (once per machine)"
    GOBIN=$gobin go install "$package" </dev/null >&2 || {
      rm -rf "$gobin"
      die "go install $package failed"
    }
    mv "$gobin"/* "$cache_bin/$name"
    rm -rf "$gobin"
    log "built $name in $(since "$start")"
  fi
  exec 8>&-
}

# Copies a cached binary into an image's build context when it differs.
stage_binary() {
  local name=$1 context=$2
  mkdir -p "$context/bin"
  cmp -s "$cache_bin/$name" "$context/bin/$3" || cp "$cache_bin/$name" "$context/bin/$3"
}

# A key and a certificate signed by the cluster CA, made again when missing, not from this CA, or near expiry.
# $1 dir, $2 file stem, $3 common name, $4 extensions (subjectAltName, extendedKeyUsage), $5 mode of the key file.
leaf() {
  local dir=$1 stem=$2 cn=$3 ext=$4 key_mode=$5
  local cert=$dir/$stem.pem key=$dir/$stem-key.pem
  if [[ -s $cert && -s $key ]] &&
    openssl verify -CAfile "$STATE/ca/ca.pem" "$cert" >/dev/null 2>&1 &&
    openssl x509 -checkend "$RENEW_WITHIN_S" -noout -in "$cert" >/dev/null; then
    return 0
  fi
  (
    umask 077
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$cn" \
      -keyout "$key.new" -out "$dir/$stem.csr" 2>/dev/null
    openssl x509 -req -in "$dir/$stem.csr" -CA "$STATE/ca/ca.pem" -CAkey "$STATE/ca/ca-key.pem" \
      -set_serial "0x$(openssl rand -hex 16)" -days "$CERT_DAYS" -extfile <(printf '%s\n' "$ext") \
      -out "$cert.new" 2>/dev/null
  )
  chmod "$key_mode" "$key.new"
  chmod 0644 "$cert.new"
  mv "$key.new" "$key"
  mv "$cert.new" "$cert"
  rm -f "$dir/$stem.csr"
  tls_changed=1
  log "certificate $stem ($cn) valid for $CERT_DAYS days"
}

make_tls() {
  install -d -m 0700 "$STATE" "$STATE/ca" "$STATE/tls/steward"
  # Read by the server's and the UI's own users inside their containers; the 0700 parent keeps others out here.
  install -d -m 0755 "$STATE/tls" "$STATE/tls/temporal" "$STATE/tls/temporal-ui"
  if [[ ! -s $STATE/ca/ca.pem || ! -s $STATE/ca/ca-key.pem ]]; then
    (
      umask 077
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/CN=steward cluster CA" -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign \
        -keyout "$STATE/ca/ca-key.pem" -out "$STATE/ca/ca.pem" 2>/dev/null
    )
    chmod 0644 "$STATE/ca/ca.pem"
    log "made the cluster CA"
  fi
  local client='extendedKeyUsage=clientAuth'
  leaf "$STATE/tls/temporal" server temporal \
    $'subjectAltName=DNS:temporal,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth' 0644
  leaf "$STATE/tls/temporal" system-worker temporal-system-worker "$client" 0644
  leaf "$STATE/tls/temporal-ui" ui temporal-ui "$client" 0644
  leaf "$STATE/tls/steward" client steward "$client" 0600
  for dir in temporal temporal-ui steward; do
    cmp -s "$STATE/ca/ca.pem" "$STATE/tls/$dir/ca.pem" || install -m 0644 "$STATE/ca/ca.pem" "$STATE/tls/$dir/ca.pem"
  done
}

# The temporal CLI against the cluster's frontend, with steward's client certificate.
temporal_cli() {
  "$temporal_bin" "$@" --address "$frontend" --tls-ca-path "$STATE/tls/steward/ca.pem" \
    --tls-cert-path "$STATE/tls/steward/client.pem" --tls-key-path "$STATE/tls/steward/client-key.pem" \
    --tls-server-name temporal
}

wait_for_frontend() {
  local deadline=$((SECONDS + READY_TIMEOUT_S))
  until temporal_cli operator cluster health >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "the Temporal frontend at $frontend is not serving after ${READY_TIMEOUT_S} s (compose logs temporal)"
    sleep 1
  done
}

write_profile() {
  local tmp=$STATE/temporal.toml.new
  cat >"$tmp" <<EOF
# Written by scripts/cluster.sh: docker-compose.dev.yml's Temporal for steward and the temporal CLI.
#   export TEMPORAL_CONFIG_FILE=$STATE/temporal.toml TEMPORAL_PROFILE=cluster
[profile.cluster]
address = "$frontend"
namespace = "default"

[profile.cluster.tls]
server_ca_cert_path = "$STATE/tls/steward/ca.pem"
server_name = "temporal"
client_cert_path = "$STATE/tls/steward/client.pem"
client_key_path = "$STATE/tls/steward/client-key.pem"
EOF
  chmod 0600 "$tmp"
  mv "$tmp" "$STATE/temporal.toml"
}

# The VPS: steward's key authorized for root, and the spec (written by `steward init` the first time) pointing at its
# published port with the host key read from the container, never from the network.
prepare_vps() {
  local spec=$STATE/steward.yaml ssh_port host_key deadline=$((SECONDS + READY_TIMEOUT_S))
  ssh_port=$(compose port vps 22 | sed -E 's/.*:([0-9]+)$/\1/')
  [[ $ssh_port =~ ^[0-9]+$ ]] || die "no published port for the VPS's sshd"
  if [[ ! -s $spec ]]; then
    node "$repo_root/bin/steward.js" init --host "$VPS_HOST=root@127.0.0.1:$ssh_port" --spec "$spec" >&2
  fi
  until host_key=$(compose exec -T vps cat /etc/ssh/ssh_host_ed25519_key.pub 2>/dev/null) && [[ -n $host_key ]]; do
    ((SECONDS < deadline)) || die "the VPS made no SSH host key in ${READY_TIMEOUT_S} s"
    sleep 1
  done
  compose exec -T vps sh -c 'install -d -m 700 /root/.ssh && cat > /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys' \
    <"$STATE/keys/steward_ed25519.pub"
  SPEC="$spec" HOST="$VPS_HOST" PORT="$ssh_port" HOST_KEY="$host_key" node --input-type=module -e '
    import { readFileSync, writeFileSync } from "node:fs";
    import { parseDocument } from "yaml";
    const { SPEC, HOST, PORT, HOST_KEY } = process.env;
    const doc = parseDocument(readFileSync(SPEC, "utf8"));
    const hosts = doc.get("hosts");
    const host = hosts?.items?.find((h) => h.get("name") === HOST);
    if (!host) throw new Error(`${SPEC} has no host named ${HOST}`);
    host.set("port", Number(PORT));
    host.set("hostKey", HOST_KEY.trim().split(/\s+/).slice(0, 2).join(" "));
    host.delete("trustOnFirstUse");
    writeFileSync(SPEC, doc.toString());
  '
  log "VPS $VPS_HOST at 127.0.0.1:$ssh_port (host key pinned in $spec)"
}

up() {
  local start
  start=$(date +%s)
  command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 ||
    die "docker-compose is missing (make setup installs it)"
  command -v openssl >/dev/null || die "openssl is missing (make setup installs it)"
  docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (make setup starts it)"

  ensure_go_binary "temporal-server-$SERVER_VERSION" "go.temporal.io/server/cmd/server@$SERVER_VERSION"
  ensure_go_binary "temporal-sql-tool-$SERVER_VERSION" "go.temporal.io/server/cmd/tools/sql@$SERVER_VERSION"
  ensure_go_binary "temporal-ui-server-$UI_VERSION" "github.com/temporalio/ui-server/v2/cmd/server@$UI_VERSION"
  stage_binary "temporal-server-$SERVER_VERSION" "$repo_root/images/cluster/temporal" temporal-server
  stage_binary "temporal-sql-tool-$SERVER_VERSION" "$repo_root/images/cluster/temporal" temporal-sql-tool
  stage_binary "temporal-ui-server-$UI_VERSION" "$repo_root/images/cluster/temporal-ui" temporal-ui-server
  temporal_bin=$(bash "$repo_root/scripts/ensure-temporal.sh")
  [[ -n $temporal_bin ]] || die "no temporal CLI (scripts/ensure-temporal.sh)"

  tls_changed=0
  make_tls
  if [[ ! -s $STATE/db-password ]]; then
    # The database keeps the password it was created with: a new one would lock the server out.
    if docker volume inspect "${PROJECT}_postgresql" >/dev/null 2>&1; then
      die "$STATE/db-password is gone but the database volume ${PROJECT}_postgresql is not: restore the file, or drop the data with \`scripts/cluster.sh down -v\`"
    fi
    (umask 022 && openssl rand -hex 24 >"$STATE/db-password.new") # 0644: see the header
    mv "$STATE/db-password.new" "$STATE/db-password"
  fi
  bash "$repo_root/scripts/build-vps-image.sh" # every image here starts from its debootstrap base

  compose build --quiet >&2
  local running
  running=$(compose ps -q temporal 2>/dev/null || true)
  compose up -d >&2
  # Certificates made again (renewed, or a new CA) reach running containers now rather than at the next refresh.
  if [[ $tls_changed == 1 && -n $running ]]; then
    log "certificates changed: restarting the Temporal server and the Web UI"
    compose restart temporal temporal-ui >&2
  fi
  frontend=$(compose port temporal 7233)
  [[ -n $frontend ]] || die "no published port for the Temporal frontend"
  wait_for_frontend
  temporal_cli operator namespace describe --namespace default >/dev/null 2>&1 ||
    temporal_cli operator namespace create --namespace default --retention 72h >&2
  write_profile
  prepare_vps

  local ui
  ui=$(compose port temporal-ui 8080)
  log "up in $(since "$start"): Temporal (TLS, client certificates) at $frontend, Web UI http://$ui"
  cat <<EOF
export TEMPORAL_CONFIG_FILE=$STATE/temporal.toml TEMPORAL_PROFILE=cluster
npx steward --spec $STATE/steward.yaml worker &
npx steward --spec $STATE/steward.yaml provision
EOF
}

down() {
  local volumes=()
  [[ ${1:-} == -v || ${1:-} == --volumes ]] && volumes=(--volumes)
  compose down "${volumes[@]}" >&2
}

case ${1:-} in
  up) up ;;
  down) down "${2:-}" ;;
  compose) compose "${@:2}" ;;
  *) die "usage: scripts/cluster.sh up | down [-v] | compose <docker-compose arguments>" ;;
esac

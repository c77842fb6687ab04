#!/usr/bin/env bash
# Builds the VPS simulator image steward/vps:bookworm without any container registry:
#   1. the base steward/debian-base:bookworm comes from debootstrap (needs root, debootstrap, a Debian mirror);
#   2. images/vps/Dockerfile turns it into a fresh-looking cloud VPS.
# Idempotent: does nothing while the image's steward.dockerfile-sha256 label matches the current Dockerfile.
# The mirror is read from this machine's apt sources; DEBIAN_MIRROR / DEBIAN_SECURITY_MIRROR override it.
set -euo pipefail

readonly IMAGE=steward/vps:bookworm
readonly BASE_IMAGE=steward/debian-base:bookworm
readonly SUITE=bookworm
readonly BASE_PACKAGES=systemd,systemd-sysv,dbus,openssh-server,sudo,nftables,iproute2,procps,ca-certificates,curl
readonly HASH_LABEL=steward.dockerfile-sha256
readonly LOCK_FILE=/var/tmp/steward-build-vps-image.lock

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly CONTEXT_DIR=$repo_root/images/vps
script_start=$(date +%s)

readonly LOG_NAME=build-vps-image
# shellcheck source=lib.sh
. "$repo_root/scripts/lib.sh"

# First URI in the machine's apt sources (one-line and deb822 formats) whose path ends in /$1, if any.
apt_source_uri() {
  local path=$1
  shopt -s nullglob
  local files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
  shopt -u nullglob
  {
    sed -nE 's/^[[:space:]]*URIs:[[:space:]]*//p' "${files[@]}" 2>/dev/null | tr -s ' \t' '\n\n'
    sed -nE 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' "${files[@]}" 2>/dev/null
  } | grep -E "/${path}/?\$" | head -n 1 || true
}


build_base_image() {
  command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
  [[ $(id -u) == 0 ]] || die "debootstrap needs root to build $BASE_IMAGE; run this script as root once"

  rootfs=$(mktemp -d /var/tmp/steward-debian-rootfs.XXXXXX)
  trap remove_rootfs EXIT
  local start
  start=$(date +%s)
  log "debootstrap $SUITE from $DEBIAN_MIRROR into $rootfs"
  if ! debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$rootfs" "$DEBIAN_MIRROR" >&2; then
    tail -n 20 "$rootfs/debootstrap/debootstrap.log" >&2 || true
    die "debootstrap failed (log tail above)"
  fi
  log "debootstrap done in $(since "$start")"

  rm -f "$rootfs"/var/cache/apt/archives/*.deb # a fresh server has no package cache

  start=$(date +%s)
  tar -C "$rootfs" -c . | docker import --change 'CMD ["/sbin/init"]' - "$BASE_IMAGE" >/dev/null
  log "imported $BASE_IMAGE in $(since "$start")"
  remove_rootfs
  trap - EXIT
}

# Unmounts whatever an interrupted debootstrap left mounted, then deletes the temporary rootfs.
remove_rootfs() {
  [[ -n ${rootfs:-} && -d $rootfs ]] || return 0
  findmnt -rno TARGET | grep -F "$rootfs/" | sort -r | xargs -r umount -l || true
  rm -rf --one-file-system "$rootfs"
}

command -v docker >/dev/null || die "docker CLI is missing"
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (is dockerd running?)"

exec 9>"$LOCK_FILE"
flock 9 # concurrent callers (parallel test files) wait here, then find the image built

dockerfile_sha256=$(sha256sum "$CONTEXT_DIR/Dockerfile" | cut -d ' ' -f 1)
previous_image_id=$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
if [[ -n $previous_image_id ]]; then
  built_sha256=$(docker image inspect --format "{{ index .Config.Labels \"$HASH_LABEL\" }}" "$IMAGE")
  if [[ $built_sha256 == "$dockerfile_sha256" ]]; then
    log "$IMAGE is up to date (Dockerfile sha256 ${dockerfile_sha256:0:12})"
    exit 0
  fi
  log "$IMAGE was built from another Dockerfile; rebuilding"
fi

DEBIAN_MIRROR=${DEBIAN_MIRROR:-$(apt_source_uri debian)}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-$(apt_source_uri debian-security)}
DEBIAN_SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

if image_exists "$BASE_IMAGE"; then
  log "base $BASE_IMAGE exists"
else
  build_base_image
fi

start=$(date +%s)
log "building $IMAGE from $CONTEXT_DIR/Dockerfile"
docker build \
  --label "$HASH_LABEL=$dockerfile_sha256" \
  --build-arg "DEBIAN_MIRROR=$DEBIAN_MIRROR" \
  --build-arg "DEBIAN_SECURITY_MIRROR=$DEBIAN_SECURITY_MIRROR" \
  --tag "$IMAGE" "$CONTEXT_DIR" >&2
log "built $IMAGE in $(since "$start")"

# The superseded image is dangling now; drop it unless a simulator still uses it.
if [[ -n $previous_image_id ]]; then
  docker image rm "$previous_image_id" >/dev/null 2>&1 || true
fi
log "done in $(since "$script_start")"

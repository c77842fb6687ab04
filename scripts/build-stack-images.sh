#!/usr/bin/env bash
# Builds the stack images steward deploys, without any container registry:
#   steward/openclaw:<OPENCLAW_VERSION>   images/openclaw/Dockerfile (Node 24 + OpenClaw + mem0 plugin, from npm)
#   steward/caddy:<major.minor>           images/caddy/Dockerfile    (Debian's caddy)
# Both start from steward/debian-base:bookworm; when it is missing, scripts/build-vps-image.sh makes it (debootstrap,
# needs root once). Versions are the Dockerfiles' ARG defaults, so the tags follow the files.
# Idempotent: an image is skipped while its steward.dockerfile-sha256 label matches its build context (the Dockerfile,
# and the other files beside it). Non-interactive.
# Prints one line per image on stdout: `<tag> <image id> <size bytes>`; progress and timings go to stderr.
#
# Environment:
#   NPM_REGISTRY            registry the OpenClaw build uses (default: `npm config get registry`, else npmjs.org)
#   STEWARD_OPENCLAW_ALSO   further OpenClaw releases to build from the same Dockerfile, space-separated (the upgrade
#                           test's earlier release); tagged steward/openclaw:<release>
#   STEWARD_BUILD_CA_FILE   PEM bundle the build stages trust in addition to Debian's CAs, for a TLS-intercepting
#                           proxy (default: this machine's /usr/local/share/ca-certificates/*.crt, if any). It never
#                           reaches the final images.
set -euo pipefail

readonly BASE_IMAGE=steward/debian-base:bookworm
readonly HASH_LABEL=steward.dockerfile-sha256
readonly LOCK_FILE=/var/tmp/steward-build-stack-images.lock

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly OPENCLAW_CONTEXT=$repo_root/images/openclaw
readonly CADDY_CONTEXT=$repo_root/images/caddy
script_start=$(date +%s)

readonly LOG_NAME=build-stack-images
# shellcheck source=lib.sh
. "$repo_root/scripts/lib.sh"

# Default value of `ARG NAME=value` in a Dockerfile.
arg_default() {
  local value
  value=$(sed -nE "s/^ARG $2=(.*)$/\1/p" "$1/Dockerfile" | head -n 1)
  [[ -n $value ]] || die "no default for ARG $2 in $1/Dockerfile"
  printf '%s' "$value"
}

extra_ca_certs() {
  if [[ -n ${STEWARD_BUILD_CA_FILE:-} ]]; then
    cat -- "$STEWARD_BUILD_CA_FILE"
    return
  fi
  shopt -s nullglob
  local files=(/usr/local/share/ca-certificates/*.crt /usr/local/share/ca-certificates/*/*.crt)
  shopt -u nullglob
  ((${#files[@]} == 0)) || cat -- "${files[@]}"
}

npm_registry() {
  local registry=${NPM_REGISTRY:-}
  if [[ -z $registry ]] && command -v npm >/dev/null; then
    registry=$(npm config get registry 2>/dev/null || true)
  fi
  registry=${registry:-https://registry.npmjs.org/}
  printf '%s' "${registry%/}"
}

# build_image TAG CONTEXT [docker build args...]: builds unless the image's label matches the Dockerfile's hash.
build_image() {
  local tag=$1 context=$2
  shift 2
  local dockerfile_sha256 previous_image_id built_sha256 start
  # The Dockerfile alone, as before, when it is the whole context; otherwise every file of the context counts.
  if [[ $(find "$context" -type f | wc -l) -eq 1 ]]; then
    dockerfile_sha256=$(sha256sum "$context/Dockerfile" | cut -d ' ' -f 1)
  else
    dockerfile_sha256=$(cd "$context" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d ' ' -f 1)
  fi
  previous_image_id=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
  if [[ -n $previous_image_id ]]; then
    built_sha256=$(docker image inspect --format "{{ index .Config.Labels \"$HASH_LABEL\" }}" "$tag")
    if [[ $built_sha256 == "$dockerfile_sha256" ]]; then
      log "$tag is up to date (Dockerfile sha256 ${dockerfile_sha256:0:12})"
      return 0
    fi
    log "$tag was built from another Dockerfile; rebuilding"
  fi

  start=$(date +%s)
  log "building $tag from $context/Dockerfile"
  docker build --label "$HASH_LABEL=$dockerfile_sha256" --tag "$tag" "$@" "$context" </dev/null >&2 ||
    die "docker build of $tag failed (output above)"
  log "built $tag in $(since "$start")"

  # The superseded image is dangling now; drop it unless a container still uses it.
  if [[ -n $previous_image_id ]]; then
    docker image rm "$previous_image_id" >/dev/null 2>&1 || true
  fi
}

# check_version TAG EXPECTED COMMAND...: the image must report EXPECTED (a substring) from COMMAND, run offline.
check_version() {
  local tag=$1 expected=$2 reported
  shift 2
  reported=$(docker run --rm --network none --entrypoint "$1" "$tag" "${@:2}" </dev/null 2>/dev/null | head -n 1)
  [[ $reported == *"$expected"* ]] || die "$tag reports '$reported', expected $expected"
  log "$tag runs $reported"
}

command -v docker >/dev/null || die "docker CLI is missing"
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (is dockerd running?)"

exec 9>"$LOCK_FILE"
flock 9 # concurrent callers (parallel test files) wait here, then find the images built

if image_exists "$BASE_IMAGE"; then
  log "base $BASE_IMAGE exists"
else
  log "base $BASE_IMAGE is missing; scripts/build-vps-image.sh builds it"
  bash "$repo_root/scripts/build-vps-image.sh" </dev/null
fi

openclaw_version=$(arg_default "$OPENCLAW_CONTEXT" OPENCLAW_VERSION)
caddy_debian_version=$(arg_default "$CADDY_CONTEXT" CADDY_DEBIAN_VERSION)
caddy_version=${caddy_debian_version%%-*}              # 2.6.2-5 → 2.6.2
readonly OPENCLAW_IMAGE=steward/openclaw:$openclaw_version
readonly CADDY_IMAGE=steward/caddy:${caddy_version%.*} # → 2.6

registry=$(npm_registry)
ca_certs=$(extra_ca_certs)
log "npm registry $registry; $(grep -c -- '-----BEGIN CERTIFICATE-----' <<<"$ca_certs" || true) extra CA certificate(s) for the build stages"

build_image "$OPENCLAW_IMAGE" "$OPENCLAW_CONTEXT" \
  --build-arg "BASE=$BASE_IMAGE" --build-arg "NPM_REGISTRY=$registry" --build-arg "EXTRA_CA_CERTS=$ca_certs"
check_version "$OPENCLAW_IMAGE" "OpenClaw $openclaw_version" openclaw --version

for release in ${STEWARD_OPENCLAW_ALSO:-}; do
  [[ $release =~ ^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$ ]] || die "STEWARD_OPENCLAW_ALSO: $release is not a release"
  build_image "steward/openclaw:$release" "$OPENCLAW_CONTEXT" --build-arg "OPENCLAW_VERSION=$release" \
    --build-arg "BASE=$BASE_IMAGE" --build-arg "NPM_REGISTRY=$registry" --build-arg "EXTRA_CA_CERTS=$ca_certs"
  check_version "steward/openclaw:$release" "OpenClaw $release" openclaw --version
done

build_image "$CADDY_IMAGE" "$CADDY_CONTEXT" --build-arg "BASE=$BASE_IMAGE"
check_version "$CADDY_IMAGE" "$caddy_version" caddy version

for tag in "$OPENCLAW_IMAGE" "$CADDY_IMAGE"; do
  docker image inspect --format "$tag {{.Id}} {{.Size}}" "$tag"
done
log "done in $(since "$script_start")"

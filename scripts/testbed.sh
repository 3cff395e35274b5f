#!/usr/bin/env bash
# Sets up the rancher-upgrade test bed on this machine, idempotently:
#   * installs the Debian packages it needs (when root, with apt),
#   * starts dockerd when the engine does not answer,
#   * starts a private registry on 127.0.0.1:$PORT (docker-registry, no auth),
#   * builds the stand-in rancher/server images from testbed/standin/ and
#     pushes them to that registry (skipped when already there and unchanged).
#
# Progress goes to stderr; stdout gets exactly one line:
#   RANCHER_UPGRADE_REGISTRY=127.0.0.1:$PORT
#
# Environment:
#   RANCHER_UPGRADE_TESTBED_DIR    state dir (default /var/lib/rancher-upgrade-testbed)
#   RANCHER_UPGRADE_REGISTRY_PORT  registry port on 127.0.0.1 (default 5599)
#
# Images pushed (REG=127.0.0.1:$PORT):
#   $REG/rancher/server:v1.6.10        schema 10
#   $REG/rancher/server:v1.6.20        schema 20
#   $REG/rancher/server:v1.6.30        schema 30
#   $REG/rancher/server:stable         same manifest as v1.6.30
#   $REG/rancher/server:v1.6.31-crash  schema 31, migrates then dies (exit 3)
#   $REG/busybox:latest                plain static busybox (for helper containers)
set -euo pipefail

export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
export DOCKER_BUILDKIT=0 # the classic builder works with every engine/client pair here

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STANDIN_SRC="$ROOT/testbed/standin"
TESTBED_DIR=${RANCHER_UPGRADE_TESTBED_DIR:-/var/lib/rancher-upgrade-testbed}
PORT=${RANCHER_UPGRADE_REGISTRY_PORT:-5599}
REGISTRY="127.0.0.1:$PORT"
BUSYBOX=/bin/busybox
HASH_LABEL=org.rancher-upgrade.standin-hash

# repo tag build-target schema ("-" = no schema)
IMAGES=(
    "rancher/server v1.6.10 normal 10"
    "rancher/server v1.6.20 normal 20"
    "rancher/server v1.6.30 normal 30"
    "rancher/server v1.6.31-crash crash 31"
    "busybox latest bb -"
)
# repo alias target-tag
ALIASES=(
    "rancher/server stable v1.6.30"
)
MANIFEST_TYPES="application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json"

log() { printf 'testbed: %s\n' "$*" >&2; }
die() {
    printf 'testbed: ERROR: %s\n' "$*" >&2
    exit 1
}
show_log_tail() { # file
    if [ -s "$1" ]; then
        printf 'testbed: --- last lines of %s ---\n' "$1" >&2
        tail -n 20 "$1" >&2 || true
    fi
}
have() { command -v "$1" >/dev/null 2>&1; }
is_root() { [ "$(id -u)" = 0 ]; }

case $PORT in
    '' | *[!0-9]*) die "RANCHER_UPGRADE_REGISTRY_PORT must be a port number, got '$PORT'" ;;
esac
[ -d "$STANDIN_SRC" ] || die "stand-in sources not found at $STANDIN_SRC"

# ---------------------------------------------------------------- packages --
static_busybox_ok() {
    [ -x "$BUSYBOX" ] || return 1
    local out
    out=$(LC_ALL=C ldd "$BUSYBOX" 2>&1 || true)
    case $out in
        *"not a dynamic executable"* | *"statically linked"*) return 0 ;;
    esac
    return 1
}

cgroups_mounted() {
    grep -qE '^[^ ]+ /sys/fs/cgroup[/ ]' /proc/mounts 2>/dev/null
}

ensure_packages() {
    local need=()
    { have docker && have dockerd; } || need+=(docker.io)
    have docker-registry || need+=(docker-registry)
    static_busybox_ok || need+=(busybox-static)
    have curl || need+=(curl)
    # The fake docker of the integration tests is a python3 script.
    have python3 || need+=(python3)
    have iptables || need+=(iptables)
    if ! cgroups_mounted && ! have cgroupfs-mount; then need+=(cgroupfs-mount); fi
    [ ${#need[@]} -eq 0 ] && return 0

    is_root || die "missing packages: ${need[*]} (run this script as root, or install them)"
    have apt-get || die "missing packages: ${need[*]} and no apt-get to install them"
    log "installing ${need[*]} (apt-get)"
    local apt_log="$TESTBED_DIR/apt.log"
    if ! DEBIAN_FRONTEND=noninteractive apt-get update -q >"$apt_log" 2>&1; then
        show_log_tail "$apt_log"
        die "apt-get update failed"
    fi
    if ! DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 \
        apt-get install -y -q "${need[@]}" >>"$apt_log" 2>&1 </dev/null; then
        show_log_tail "$apt_log"
        die "apt-get install ${need[*]} failed"
    fi
    static_busybox_ok || die "$BUSYBOX is not a static binary even after installing busybox-static"
}

# -------------------------------------------------------------- background --
# start_bg LOGFILE PIDFILE CMD...: detached from this script (own session, no
# stdin, output appended to LOGFILE, no inherited descriptors) so that callers
# capturing our stdout do not wait for it and it outlives us; PIDFILE gets its
# pid. dpkg's start-stop-daemon does the daemonizing: `setsid CMD &` forks once
# more when the job is a process group leader (job control on), and `$!` then
# names a process that has already exited.
start_bg() {
    local logf=$1 pidf=$2 program
    shift 2
    program=$(command -v "$1") || die "$1 not found"
    shift
    rm -f "$pidf"
    start-stop-daemon --start --background --make-pidfile --pidfile "$pidf" \
        --output "$logf" --startas "$program" -- "$@" ||
        die "start-stop-daemon could not start $program"
}

# ------------------------------------------------------------------ docker --
# The socket accepts connections before dockerd serves them, so every probe has
# its own timeout, and the wait has a deadline.
docker_up() { timeout 5 docker info >/dev/null 2>&1; }
DOCKER_START_SECONDS=60

docker_data_root() {
    python3 -c 'import json,sys
try: print(json.load(open("/etc/docker/daemon.json")).get("data-root") or "/var/lib/docker")
except (OSError, ValueError): print("/var/lib/docker")'
}

# dockerd 20.10 never finishes "Loading containers" on a --volumes-from loop
# (moby#38825); find one before starting it, rather than wait for nothing.
refuse_volumes_from_loops() {
    local root loops
    root=$(docker_data_root)
    loops=$(python3 "$ROOT/scripts/volumes-from-loops.py" "$root")
    [ -z "$loops" ] && return 0
    printf 'testbed:   %s\n' "$loops" >&2
    die "dockerd would hang at start on the --volumes-from loop(s) above, in $root/containers (moby#38825): remove one container of each loop from there, or empty its \"VolumesFrom\" in hostconfig.json, then run this again"
}

# Why a running dockerd does not answer: its goroutine dump (SIGUSR1), which
# names a volumes-from loop when that is the cause.
explain_silent_dockerd() { # pid
    local asked="$TESTBED_DIR/dump-asked" dump
    : >"$asked"
    kill -USR1 "$1" 2>/dev/null || return 0
    sleep 1
    # Only a dump written for this signal: an older one may tell of an earlier hang.
    dump=$(find /var/run/docker -maxdepth 1 -name 'goroutine-stacks-*.log' -newer "$asked" 2>/dev/null | head -n 1)
    rm -f "$asked"
    if [ -z "$dump" ]; then
        log "dockerd (pid $1) wrote no goroutine dump on SIGUSR1"
        return 0
    fi
    log "dockerd's goroutine dump: $dump"
    if grep -q backportMountSpec "$dump"; then
        log "dockerd is stuck restoring a --volumes-from loop (moby#38825):"
        python3 "$ROOT/scripts/volumes-from-loops.py" "$(docker_data_root)" | sed 's/^/testbed:   /' >&2
    fi
}

# live_pid PIDFILE COMM: the pid PIDFILE names, when that process is a live
# COMM; a zombie left by a killed one does not count.
live_pid() {
    local pid stat
    pid=$(cat "$1" 2>/dev/null) || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    case $stat in
        *"($2) Z"*) return 1 ;;
        *"($2) "*) echo "$pid" ;;
        *) return 1 ;;
    esac
}

# The dockerd of the default socket: its pid file names it (a test's private
# dockerd has a socket and pid file of its own).
default_dockerd_pid() { live_pid /var/run/docker.pid dockerd; }

# Pid files left by a dockerd and its containerd that were killed, whose pids
# may still be zombies: dockerd refuses to start, or waits for that containerd
# until it times out, while the pid they name exists.
remove_stale_pid_files() {
    live_pid /var/run/docker.pid dockerd >/dev/null || rm -f /var/run/docker.pid
    live_pid /var/run/docker/containerd/containerd.pid containerd >/dev/null ||
        rm -f /var/run/docker/containerd/containerd.pid
}

ensure_docker() {
    if docker_up; then return 0; fi
    if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST}" != "unix:///var/run/docker.sock" ]; then
        die "docker engine at DOCKER_HOST=$DOCKER_HOST does not answer"
    fi
    local pid=""
    if pid=$(default_dockerd_pid); then
        log "dockerd is running (pid $pid) but not answering yet; waiting"
    else
        is_root || die "docker engine does not answer and only root can start dockerd"
        if ! cgroups_mounted; then
            log "mounting cgroups (cgroupfs-mount)"
            cgroupfs-mount || die "cgroupfs-mount failed"
        fi
        refuse_volumes_from_loops
        remove_stale_pid_files
        log "starting dockerd (log: $TESTBED_DIR/dockerd.log)"
        start_bg "$TESTBED_DIR/dockerd.log" "$TESTBED_DIR/dockerd.pid" dockerd
        pid=$(cat "$TESTBED_DIR/dockerd.pid")
    fi
    local deadline=$((SECONDS + DOCKER_START_SECONDS))
    while ((SECONDS < deadline)); do
        if docker_up; then
            log "docker engine is up"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            show_log_tail "$TESTBED_DIR/dockerd.log"
            die "dockerd (pid $pid) exited before answering"
        fi
        sleep 0.5
    done
    show_log_tail "$TESTBED_DIR/dockerd.log"
    explain_silent_dockerd "$pid"
    die "docker engine did not answer within $DOCKER_START_SECONDS s ('docker info' fails)"
}

# ---------------------------------------------------------------- registry --
registry_up() { curl -sf -o /dev/null --max-time 3 "http://$REGISTRY/v2/"; }

write_registry_config() {
    local cfg="$TESTBED_DIR/registry.yml" tmp
    tmp=$(mktemp "$TESTBED_DIR/registry.yml.XXXXXX")
    cat >"$tmp" <<EOF
# written by scripts/testbed.sh
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $TESTBED_DIR/registry-data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$PORT
EOF
    mv "$tmp" "$cfg"
}

ensure_registry() {
    if registry_up; then return 0; fi
    mkdir -p "$TESTBED_DIR/registry-data"
    write_registry_config
    log "starting docker-registry on $REGISTRY (log: $TESTBED_DIR/registry.log)"
    start_bg "$TESTBED_DIR/registry.log" "$TESTBED_DIR/registry.pid" \
        docker-registry serve "$TESTBED_DIR/registry.yml"
    local pid deadline=$((SECONDS + 15))
    pid=$(cat "$TESTBED_DIR/registry.pid")
    while ((SECONDS < deadline)); do
        if registry_up; then
            log "registry is up"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            show_log_tail "$TESTBED_DIR/registry.log"
            die "docker-registry (pid $pid) exited before answering on $REGISTRY"
        fi
        sleep 0.25
    done
    show_log_tail "$TESTBED_DIR/registry.log"
    die "registry did not answer on http://$REGISTRY/v2/ within 15 s"
}

# digest of repo:tag in the registry, or nothing when absent
registry_digest() { # repo tag
    curl -sf -I --max-time 10 -H "Accept: $MANIFEST_TYPES" \
        "http://$REGISTRY/v2/$1/manifests/$2" 2>/dev/null |
        tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" { print $2 }' || true
}

# ------------------------------------------------------------------ images --
standin_hash() {
    {
        echo "recipe 1"
        printf '%s\n' "${IMAGES[@]}"
        (cd "$STANDIN_SRC" && find . -type f | LC_ALL=C sort | while IFS= read -r f; do
            printf '%s ' "$f"
            sha256sum <"$f"
        done)
        printf 'busybox '
        sha256sum <"$BUSYBOX"
    } | sha256sum | cut -d' ' -f1
}

stamp_file() { # repo tag
    echo "$TESTBED_DIR/stamps/${1//\//_}_$2"
}

CONTEXT_READY=0
REPLACED_IDS=()
prepare_context() {
    [ "$CONTEXT_READY" = 1 ] && return 0
    local ctx="$TESTBED_DIR/build-context"
    rm -rf "$ctx"
    mkdir -p "$ctx"
    cp -a "$STANDIN_SRC/." "$ctx/"
    cp "$BUSYBOX" "$ctx/busybox"
    CONTEXT_READY=1
}

build_and_push() { # repo tag target schema hash
    local repo=$1 tag=$2 target=$3 schema=$4 hash=$5
    local ref="$REGISTRY/$repo:$tag" blog="$TESTBED_DIR/build.log"
    local args=(--target "$target" --label "$HASH_LABEL=$hash" -t "$ref")
    if [ "$schema" != - ]; then
        args+=(--build-arg "STANDIN_TAG=$tag" --build-arg "STANDIN_SCHEMA=$schema")
    fi
    prepare_context
    local old_id new_id
    old_id=$(docker image inspect -f '{{.Id}}' "$ref" 2>/dev/null || true)
    log "building $ref"
    if ! docker build "${args[@]}" "$TESTBED_DIR/build-context" >"$blog" 2>&1; then
        show_log_tail "$blog"
        die "docker build of $ref failed"
    fi
    new_id=$(docker image inspect -f '{{.Id}}' "$ref")
    if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then REPLACED_IDS+=("$old_id"); fi
    log "pushing $ref"
    if ! docker push "$ref" >"$TESTBED_DIR/push.log" 2>&1; then
        show_log_tail "$TESTBED_DIR/push.log"
        die "docker push $ref failed"
    fi
    local digest
    digest=$(registry_digest "$repo" "$tag")
    [ -n "$digest" ] || die "pushed $ref but the registry does not list it"
    echo "$hash $digest" >"$(stamp_file "$repo" "$tag")"
}

ensure_images() {
    local hash entry repo tag target schema digest stamp
    hash=$(standin_hash)
    mkdir -p "$TESTBED_DIR/stamps"
    for entry in "${IMAGES[@]}"; do
        read -r repo tag target schema <<<"$entry"
        digest=$(registry_digest "$repo" "$tag")
        stamp=$(cat "$(stamp_file "$repo" "$tag")" 2>/dev/null || true)
        if [ -n "$digest" ] && [ "$stamp" = "$hash $digest" ]; then
            continue
        fi
        build_and_push "$repo" "$tag" "$target" "$schema" "$hash"
    done
    local alias
    for entry in "${ALIASES[@]}"; do
        read -r repo alias tag <<<"$entry"
        digest=$(registry_digest "$repo" "$tag")
        [ -n "$digest" ] || die "$repo:$tag missing from the registry"
        [ "$(registry_digest "$repo" "$alias")" = "$digest" ] && continue
        log "tagging $REGISTRY/$repo:$alias as $tag"
        copy_manifest "$repo" "$tag" "$alias"
        if docker image inspect "$REGISTRY/$repo:$tag" >/dev/null 2>&1; then
            docker tag "$REGISTRY/$repo:$tag" "$REGISTRY/$repo:$alias"
        fi
    done
    # Drop the local images that rebuilds replaced (fails harmlessly while a
    # container still uses one, or when something else tags it).
    local id
    for id in "${REPLACED_IDS[@]}"; do
        docker rmi "$id" >/dev/null 2>&1 || true
    done
    if [ "$CONTEXT_READY" = 1 ]; then
        # The classic builder leaves untagged images of the stages it passes
        # (e.g. "crash" on the way to "normal"); drop those, ours only.
        docker image prune -f --filter "label=org.rancher-upgrade.standin=1" >/dev/null 2>&1 || true
    fi
}

# copy_manifest repo from-tag to-tag: registry-side retag (no local image needed)
copy_manifest() {
    local repo=$1 from=$2 to=$3 tmp ctype
    tmp=$(mktemp -d)
    if ! curl -sf --max-time 10 -H "Accept: $MANIFEST_TYPES" -D "$tmp/headers" -o "$tmp/manifest" \
        "http://$REGISTRY/v2/$repo/manifests/$from"; then
        rm -rf "$tmp"
        die "cannot fetch manifest $repo:$from"
    fi
    ctype=$(tr -d '\r' <"$tmp/headers" | awk 'tolower($1) == "content-type:" { print $2 }')
    if ! curl -sf --max-time 10 -X PUT -H "Content-Type: $ctype" --data-binary "@$tmp/manifest" \
        -o /dev/null "http://$REGISTRY/v2/$repo/manifests/$to"; then
        rm -rf "$tmp"
        die "cannot put manifest $repo:$to"
    fi
    rm -rf "$tmp"
}

# -------------------------------------------------------------------- main --
main() {
    if ! mkdir -p "$TESTBED_DIR" 2>/dev/null || [ ! -w "$TESTBED_DIR" ]; then
        die "cannot write $TESTBED_DIR (set RANCHER_UPGRADE_TESTBED_DIR or run as root)"
    fi
    # One set-up at a time (tests may call this script concurrently).
    exec 9>"$TESTBED_DIR/testbed.lock"
    if have flock; then
        flock -w 900 9 || die "timed out waiting for $TESTBED_DIR/testbed.lock"
    fi

    ensure_packages
    ensure_docker
    ensure_registry
    ensure_images
    log "ready: registry $REGISTRY"
    echo "RANCHER_UPGRADE_REGISTRY=$REGISTRY"
}

main "$@"

#!/usr/bin/env bash
# Sets up the rancher-upgrade test bed on this machine, idempotently:
#   * installs the Debian packages it needs (when root, with apt),
#   * starts dockerd when the engine does not answer,
#   * starts a private registry on 127.0.0.1:$PORT (docker-registry, no auth),
#   * builds the stand-in rancher/server images from testbed/standin/ and
#     pushes them to that registry (skipped when already there and unchanged),
#   * starts N other hosts (network, mount and UTS namespaces ruhost1..N on the
#     bridge rutb0, each with its own dockerd, sshd and registry forwarder; see
#     "other hosts" below) and pulls the base stand-in images into them,
#   * starts the external-database stand-in (testbed/db/rudb.py, see its
#     README.md) on the bridge's address 10.231.0.1, where containers on every
#     engine reach it: the MySQL that stand-in servers given --db-host use,
#     and that their mysqldump and mysql stand-ins dump and restore,
#   * sets up rootful podman (registry, cgroups, ulimits) and pulls them there.
#
# Progress goes to stderr; stdout gets one NAME=value line per fact:
#   RANCHER_UPGRADE_REGISTRY=127.0.0.1:$PORT      (the same name on every engine)
#   RANCHER_UPGRADE_HOSTS=N
#   RANCHER_UPGRADE_HOSTK_UNIX=unix://$DIR/hosts/ruhostK/docker.sock   for K in 1..N
#   RANCHER_UPGRADE_HOSTK_TCP=tcp://10.231.0.(10+K):2375
#   RANCHER_UPGRADE_HOSTK_SSH=ssh://root@10.231.0.(10+K)
#   RANCHER_UPGRADE_HOSTK_ADDR=10.231.0.(10+K)
#   RANCHER_UPGRADE_DB_HOST=10.231.0.1             the database stand-in (--db-host)
#   RANCHER_UPGRADE_DB_PORT=3306                   (--db-port)
#   RANCHER_UPGRADE_DB_USER=cattle                 its user, who may use any database
#   RANCHER_UPGRADE_DB_PASS=rudb-...               that user's password (made once)
#   RANCHER_UPGRADE_DB_LOG=$DIR/db/log.jsonl       every connection and change, JSON lines
#   RANCHER_UPGRADE_PODMAN=/usr/bin/podman
#
#   scripts/testbed.sh               set up (or repair) all of it
#   scripts/testbed.sh --down-hosts  stop the other hosts and the database stand-in
#                                    (their data roots and databases stay)
#
# Environment:
#   RANCHER_UPGRADE_TESTBED_DIR      state dir (default /var/lib/rancher-upgrade-testbed)
#   RANCHER_UPGRADE_REGISTRY_PORT    registry port on 127.0.0.1 (default 5599)
#   RANCHER_UPGRADE_TESTBED_HOSTS    how many other hosts (default 3, 0 to 20)
#   RANCHER_UPGRADE_TESTBED_DB_PORT  the database stand-in's port (default 3306)
#
# Images pushed (REG=127.0.0.1:$PORT):
#   $REG/rancher/server:v1.6.10        schema 10
#   $REG/rancher/server:v1.6.20        schema 20
#   $REG/rancher/server:v1.6.30        schema 30
#   $REG/rancher/server:stable         same manifest as v1.6.30
#   $REG/rancher/server:v1.6.31-crash  schema 31, migrates then dies (exit 3)
#   $REG/busybox:latest                plain static busybox (for helper containers)
# Each rancher/server image also ships mysql and mysqldump stand-ins that talk
# to the database stand-in (testbed/standin/README.md).
set -euo pipefail

export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
export DOCKER_BUILDKIT=0 # the classic builder works with every engine/client pair here

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STANDIN_SRC="$ROOT/testbed/standin"
TESTBED_DIR=${RANCHER_UPGRADE_TESTBED_DIR:-/var/lib/rancher-upgrade-testbed}
PORT=${RANCHER_UPGRADE_REGISTRY_PORT:-5599}
HOSTS=${RANCHER_UPGRADE_TESTBED_HOSTS:-3}
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
case $HOSTS in
    '' | *[!0-9]*) die "RANCHER_UPGRADE_TESTBED_HOSTS must be a number from 0 to 20, got '$HOSTS'" ;;
esac
case ${RANCHER_UPGRADE_TESTBED_DB_PORT:-3306} in
    '' | *[!0-9]*) die "RANCHER_UPGRADE_TESTBED_DB_PORT must be a port number, got '$RANCHER_UPGRADE_TESTBED_DB_PORT'" ;;
esac
HOSTS=$((10#$HOSTS))
[ "$HOSTS" -le 20 ] || die "RANCHER_UPGRADE_TESTBED_HOSTS must be a number from 0 to 20, got '$HOSTS'"
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
    # The by-hand backup and restore of the runbooks, and the tests that read an archive.
    have zstd || need+=(zstd)
    # The fake docker of the integration tests is a python3 script.
    have python3 || need+=(python3)
    have iptables || need+=(iptables)
    if ! cgroups_mounted && ! have cgroupfs-mount; then need+=(cgroupfs-mount); fi
    have podman || need+=(podman)
    # A container in podman's storage alone, as a podman create killed halfway leaves one, is
    # made on demand with buildah (`buildah from`).
    have buildah || need+=(buildah)
    if [ "$HOSTS" -gt 0 ]; then
        have ip || need+=(iproute2)
        have socat || need+=(socat)
        { have ssh && have ssh-keygen; } || need+=(openssh-client)
        [ -x /usr/sbin/sshd ] || need+=(openssh-server)
    fi
    [ ${#need[@]} -eq 0 ] && return 0

    is_root || die "missing packages: ${need[*]} (run this script as root, or install them)"
    have apt-get || die "missing packages: ${need[*]} and no apt-get to install them"
    log "installing ${need[*]} (apt-get)"
    local apt_log="$TESTBED_DIR/apt.log"
    if ! DEBIAN_FRONTEND=noninteractive apt-get update -q >"$apt_log" 2>&1; then
        show_log_tail "$apt_log"
        die "apt-get update failed"
    fi
    # No service starts on install where nothing says so already: installing
    # openssh-server must not leave an sshd on every address of this machine.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# rancher-upgrade scripts/testbed.sh, for one apt-get install\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    local status=0
    DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 \
        apt-get install -y -q "${need[@]}" >>"$apt_log" 2>&1 </dev/null || status=$?
    if [ "$made_policy" = 1 ]; then
        rm -f "$policy"
        trap - EXIT
    fi
    if [ "$status" != 0 ]; then
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
start_bg() { start_bg_in "" "$@"; }

# start_bg_in ANCHOR-PID LOGFILE PIDFILE CMD...: start_bg inside the mount, UTS
# and network namespaces of ANCHOR-PID (one of the other hosts; "" = here).
start_bg_in() {
    local anchor=$1 logf=$2 pidf=$3 program enter=()
    shift 3
    program=$(command -v "$1") || die "$1 not found"
    shift
    [ -n "$anchor" ] && enter=(nsenter --target "$anchor" --mount --uts --net --)
    rm -f "$pidf"
    "${enter[@]}" start-stop-daemon --start --background --make-pidfile --pidfile "$pidf" \
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

# proc_running PID: alive and not a zombie.
proc_running() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
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
declare -A DIGESTS=() # repo:tag -> digest in the registry, as ensure_images left it
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
    DIGESTS[$repo:$tag]=$digest
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
            DIGESTS[$repo:$tag]=$digest
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

# ------------------------------------------------------------- other hosts --
# Host K (ruhostK) is a network namespace on the bridge rutb0 (10.231.0.1/24 here,
# 10.231.0.(10+K) there; no route anywhere else) with a mount and UTS namespace
# of its own: private /tmp, /srv and /run (= /var/run), hostname ruhostK. Its
# processes, all started here by start-stop-daemon through nsenter:
#   anchor        sleep, the first process there: it made the mounts and holds the
#                 namespaces; when it is gone, the host is restarted from scratch
#   dockerd       data root $HOSTS_DIR/ruhostK/docker, exec root its private
#                 /var/run/docker, listening on its /var/run/docker.sock (what
#                 docker finds in an ssh session there), on
#                 $HOSTS_DIR/ruhostK/docker.sock (seen from here) and on
#                 tcp://10.231.0.(10+K):2375, no TLS (--tls=false: else dockerd
#                 sleeps 15 s at start to warn of it); bridge 10.232.K.1/24,
#                 containers under the cgroup /ruhostK
#   sshd          10.231.0.(10+K):22, root by the testbed's key only
#   registry-fwd  socat 127.0.0.1:$PORT there -> 10.231.0.1:$PORT here, where one
#                 more socat forwards to the registry, so an image has the same
#                 name on every engine
# Nothing restarts a daemon that dies but this script, when run again.
#
# Checked by hand once: a container run with -p 8080:8080 on host 1's engine
# answered on 10.231.0.11:8080 and not on 127.0.0.1:8080 here (connection
# refused), and a file it wrote to a bind mount under /srv was in host 1's /srv
# (through ssh root@10.231.0.11) and not in this machine's /srv.
BRIDGE=rutb0
NET_PREFIX=10.231.0
BRIDGE_ADDR=$NET_PREFIX.1
HOSTS_DIR=$TESTBED_DIR/hosts
SSH_DIR=$TESTBED_DIR/ssh
HOST_START_SECONDS=60
# repo tag: what each host engine and podman have pulled before the tests start
PREPULL=(
    "rancher/server v1.6.10"
    "rancher/server v1.6.20"
    "rancher/server v1.6.30"
    "rancher/server v1.6.31-crash"
    "busybox latest"
)

host_name() { echo "ruhost$1"; }
host_addr() { echo "$NET_PREFIX.$((10 + $1))"; }
host_dir() { echo "$HOSTS_DIR/ruhost$1"; }
host_socket() { echo "$HOSTS_DIR/ruhost$1/docker.sock"; }
host_mac() { printf '02:72:75:00:00:%02x\n' "$1"; }

# The anchor's script (sh, run by `ip netns exec NS unshare --mount --uts`):
# $1 hostname, $2 the cgroup mounts to make again ("dir type options" lines),
# since `ip netns exec` mounts a sysfs of its own on /sys.
# shellcheck disable=SC2016 # expanded by the anchor's sh
ANCHOR_SH='set -eu
echo "$1" >/proc/sys/kernel/hostname
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /srv
mount -t tmpfs -o mode=755 tmpfs /run
if [ ! -L /var/run ]; then mount -t tmpfs -o mode=755 tmpfs /var/run; fi
mkdir -p /var/run/sshd /var/run/lock
chmod 755 /var/run/sshd
printf "%s\n" "$2" | while read -r dir type opts; do
    [ -n "$dir" ] || continue
    mkdir -p "$dir"
    mount -t "$type" -o "$opts" "$type" "$dir"
done
echo "anchor of $1: mounts made"
exec sleep infinity'

# The cgroup mounts here, to make again on each host.
cgroup_mounts() {
    awk '($2 == "/sys/fs/cgroup" || $2 ~ "^/sys/fs/cgroup/") &&
        ($3 == "tmpfs" || $3 == "cgroup" || $3 == "cgroup2") { print $2, $3, $4 }' /proc/mounts
}

netns_ino() { stat -L -c %i "/run/netns/$1" 2>/dev/null; } # name
pid_netns_ino() {                                          # pid
    local link
    link=$(readlink "/proc/$1/ns/net" 2>/dev/null) || return 1
    link=${link#net:[}
    echo "${link%]}"
}

# host_pid K NAME COMM: the pid of the host's NAME (pid file NAME.pid), when it
# is a live COMM in that host's network namespace.
host_pid() {
    local pid ino
    pid=$(live_pid "$(host_dir "$1")/$2.pid" "$3") || return 1
    ino=$(netns_ino "$(host_name "$1")") || return 1
    [ "$(pid_netns_ino "$pid")" = "$ino" ] || return 1
    echo "$pid"
}
host_anchor() { host_pid "$1" anchor sleep; }
# The host's /var/run as seen from here, through its anchor's root. Not
# /proc/PID/root/var/run: /var/run is a symlink to /run, and an absolute link
# under /proc/PID/root resolves against this machine's root, so that would be
# this machine's /run (the main engine's pid files and socket).
host_var_run() { echo "/proc/$1/root$(readlink -f /var/run)"; } # anchor pid

# put_file PATH MODE: stdin to PATH, only when it differs (PUT_CHANGED=1 then).
put_file() {
    local path=$1 mode=$2 tmp
    tmp=$(mktemp "$path.XXXXXX")
    cat >"$tmp"
    if cmp -s "$tmp" "$path" 2>/dev/null; then
        rm -f "$tmp"
        PUT_CHANGED=0
        return 0
    fi
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$path"
    PUT_CHANGED=1
}

# Unix sockets and the ssh banner, each with a timeout of its own.
unix_ping() { [ "$(curl -s --max-time 3 --unix-socket "$1" http://engine/_ping 2>/dev/null)" = OK ]; }
tcp_ping() { [ "$(curl -s --max-time 3 "http://$1:2375/_ping" 2>/dev/null)" = OK ]; }
# shellcheck disable=SC2016 # $1 of the inner bash
ssh_banner() { # addr
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/22" && head -c 4 <&3' _ "$1" 2>/dev/null | grep -q '^SSH-'
}
ns_registry_up() { # name
    nsenter --net="/run/netns/$1" curl -sf -o /dev/null --max-time 3 "http://$REGISTRY/v2/" 2>/dev/null
}

# ---- the client key, the host keys, and ssh for root -----------------------
ensure_ssh() {
    local k name addr known="" hosts_line=""
    mkdir -p "$SSH_DIR"
    chmod 700 "$SSH_DIR"
    if [ ! -s "$SSH_DIR/id_ed25519" ] || [ ! -s "$SSH_DIR/id_ed25519.pub" ]; then
        log "generating the ssh client key $SSH_DIR/id_ed25519"
        rm -f "$SSH_DIR/id_ed25519" "$SSH_DIR/id_ed25519.pub"
        ssh-keygen -q -t ed25519 -N '' -C rancher-upgrade-testbed -f "$SSH_DIR/id_ed25519" </dev/null ||
            die "ssh-keygen failed"
    fi
    put_file "$SSH_DIR/authorized_keys" 600 <"$SSH_DIR/id_ed25519.pub"
    for ((k = 1; k <= HOSTS; k++)); do
        name=$(host_name "$k")
        if [ ! -s "$SSH_DIR/${name}_host_ed25519" ] || [ ! -s "$SSH_DIR/${name}_host_ed25519.pub" ]; then
            rm -f "$SSH_DIR/${name}_host_ed25519" "$SSH_DIR/${name}_host_ed25519.pub"
            ssh-keygen -q -t ed25519 -N '' -C "$name" -f "$SSH_DIR/${name}_host_ed25519" </dev/null ||
                die "ssh-keygen failed"
        fi
    done
    # Every host that has a key, not only the first $HOSTS: one started by an
    # earlier run with more hosts stays reachable.
    for k in "$SSH_DIR"/ruhost*_host_ed25519.pub; do
        [ -e "$k" ] || continue
        name=${k##*/}
        name=${name%_host_ed25519.pub}
        addr=$(host_addr "${name#ruhost}")
        known+="$addr $(cut -d' ' -f1,2 "$k")"$'\n'
        hosts_line+=" $addr"
    done
    printf '%s' "$known" | put_file "$SSH_DIR/known_hosts" 644
    put_file "$SSH_DIR/ssh_config" 644 <<EOC
# written by rancher-upgrade's scripts/testbed.sh: root on the test bed's other hosts
Host$hosts_line
    User root
    IdentityFile $SSH_DIR/id_ed25519
    IdentitiesOnly yes
    UserKnownHostsFile $SSH_DIR/known_hosts
    StrictHostKeyChecking yes
    BatchMode yes
    ConnectTimeout 5
    LogLevel ERROR
EOC
    # ssh reads the config of the passwd entry's home, whatever $HOME says.
    local home cfg include
    home=$(getent passwd "$(id -u)" | cut -d: -f6)
    [ -n "$home" ] || die "no home directory for uid $(id -u) in the passwd database"
    cfg="$home/.ssh/config"
    include="Include $SSH_DIR/ssh_config"
    if [ "$(head -n 1 "$cfg" 2>/dev/null)" != "$include" ]; then
        log "adding '$include' as the first line of $cfg"
        mkdir -p "$home/.ssh"
        chmod 700 "$home/.ssh"
        { echo "$include"; grep -vxF "$include" "$cfg" 2>/dev/null || true; } | put_file "$cfg" 600
    fi
}

# ---- the bridge, the FORWARD rule, the registry forwarder here --------------
ensure_bridge() {
    ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge ||
        die "cannot create the bridge $BRIDGE (ip link add)"
    ip -4 -o addr show dev "$BRIDGE" | grep -qF " $BRIDGE_ADDR/24 " ||
        ip addr add "$BRIDGE_ADDR/24" dev "$BRIDGE" || die "cannot give $BRIDGE the address $BRIDGE_ADDR/24"
    ip link set "$BRIDGE" up
    # dockerd loads br_netfilter and sets FORWARD's policy to DROP, and bridged
    # frames go through FORWARD: without this, host 1 cannot reach host 2.
    if ! iptables -w 10 -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null; then
        log "iptables: accepting forwarded traffic between the hosts on $BRIDGE"
        iptables -w 10 -I FORWARD 1 -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT ||
            die "iptables -I FORWARD -i $BRIDGE -o $BRIDGE -j ACCEPT failed"
    fi
}

bridge_registry_up() { curl -sf -o /dev/null --max-time 3 "http://$BRIDGE_ADDR:$PORT/v2/"; }

ensure_registry_forwarder() {
    local pid logf="$TESTBED_DIR/registry-fwd.log" pidf="$TESTBED_DIR/registry-fwd.pid"
    if pid=$(live_pid "$pidf" socat); then
        bridge_registry_up && return 0
        log "the registry forwarder on $BRIDGE_ADDR:$PORT (pid $pid) does not answer; restarting it"
        kill "$pid" 2>/dev/null || true
        sleep 0.2
    fi
    log "forwarding $BRIDGE_ADDR:$PORT to the registry (log: $logf)"
    start_bg "$logf" "$pidf" socat "TCP-LISTEN:$PORT,bind=$BRIDGE_ADDR,reuseaddr,fork" "TCP:$REGISTRY"
    local deadline=$((SECONDS + 10))
    pid=$(cat "$pidf")
    while ((SECONDS < deadline)); do
        bridge_registry_up && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            show_log_tail "$logf"
            die "socat (pid $pid) exited before forwarding $BRIDGE_ADDR:$PORT to the registry"
        fi
        sleep 0.1
    done
    show_log_tail "$logf"
    die "the registry did not answer on http://$BRIDGE_ADDR:$PORT/v2/ within 10 s"
}

# ---- one host -------------------------------------------------------------
# Stop every process of host K: those in its network namespace (and in the one
# a live process of its pid files is in, should the name now mean another), and
# those in its containers' cgroups; then remove its empty cgroups.
kill_host() {
    local k=$1 name hd self ino f pid inos=() pids=() d
    name=$(host_name "$k")
    hd=$(host_dir "$k")
    self=$(pid_netns_ino $$)
    if ino=$(netns_ino "$name"); then inos+=("$ino"); fi
    for f in anchor:sleep dockerd:dockerd sshd:sshd registry-fwd:socat; do
        pid=$(live_pid "$hd/${f%%:*}.pid" "${f#*:}") || continue
        ino=$(pid_netns_ino "$pid") || continue
        [ "$ino" != "$self" ] && inos+=("$ino")
    done
    for ino in $(printf '%s\n' "${inos[@]}" | sort -u); do
        [ "$ino" = "$self" ] && continue
        while IFS= read -r pid; do
            pids+=("$pid")
        done < <(find /proc -mindepth 3 -maxdepth 3 -path '/proc/[0-9]*/ns/net' -lname "net:\[$ino\]" 2>/dev/null |
            cut -d/ -f3)
    done
    for d in /sys/fs/cgroup/*/"$name" /sys/fs/cgroup/"$name"; do
        [ -d "$d" ] || continue
        while IFS= read -r pid; do
            [ -n "$pid" ] && pids+=("$pid")
        done < <(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null)
    done
    # shellcheck disable=SC2207 # pids: numbers, one a line
    pids=($(printf '%s\n' "${pids[@]}" | sort -un))
    if [ ${#pids[@]} -gt 0 ]; then
        log "$name: stopping its ${#pids[@]} process(es)"
        kill -TERM "${pids[@]}" 2>/dev/null || true
        local deadline=$((SECONDS + 10)) sig=KILL alive
        while :; do
            alive=()
            for pid in "${pids[@]}"; do
                proc_running "$pid" && alive+=("$pid")
            done
            [ ${#alive[@]} -eq 0 ] && break
            if ((SECONDS >= deadline)); then
                [ "$sig" = none ] && die "$name: process(es) ${alive[*]} survive SIGKILL; see ps -o pid,stat,args -p ${alive[*]}"
                kill -KILL "${alive[@]}" 2>/dev/null || true
                sig=none
                deadline=$((SECONDS + 5))
            fi
            sleep 0.1
        done
    fi
    for d in /sys/fs/cgroup/*/"$name" /sys/fs/cgroup/"$name"; do
        [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    rm -f "$hd"/{anchor,dockerd,sshd,registry-fwd}.pid
}

# A fresh network namespace for host K, wired to the bridge.
create_host_net() {
    local k=$1 name addr veth
    name=$(host_name "$k")
    addr=$(host_addr "$k")
    veth="veth-$name"
    if [ -e "/run/netns/$name" ]; then ip netns del "$name" || die "ip netns del $name failed"; fi
    # A host-side veth whose peer was in an older namespace of that name.
    if ip link show "$veth" >/dev/null 2>&1; then ip link del "$veth" 2>/dev/null || true; fi
    ip netns add "$name" || die "ip netns add $name failed"
    # A fixed MAC: the neighbour caches here and on the other hosts stay right
    # when a host is made again (a new random one left tcp hanging for ~20 s).
    ip link add "$veth" type veth peer name eth0 address "$(host_mac "$k")" netns "$name" ||
        die "cannot create the veth pair $veth/eth0 for $name"
    ip link set "$veth" master "$BRIDGE" up
    ip -n "$name" addr add "$addr/24" dev eth0
    ip -n "$name" link set eth0 up
    ip -n "$name" link set lo up
}

# The anchor of host K, after a fresh network namespace: the mounts and
# namespaces every other process of the host then enters.
start_host_anchor() {
    local k=$1 name hd pid comm deadline
    name=$(host_name "$k")
    hd=$(host_dir "$k")
    kill_host "$k"
    create_host_net "$k"
    log "$name: new namespaces, address $(host_addr "$k") (log: $hd/anchor.log)"
    start_bg "$hd/anchor.log" "$hd/anchor.pid" ip netns exec "$name" \
        unshare --mount --uts --propagation private sh -c "$ANCHOR_SH" anchor "$name" "$CGROUP_MOUNTS"
    pid=$(cat "$hd/anchor.pid")
    deadline=$((SECONDS + 10))
    while ((SECONDS < deadline)); do
        comm=$(cat "/proc/$pid/comm" 2>/dev/null) || break
        [ "$comm" = sleep ] && return 0
        sleep 0.05
    done
    show_log_tail "$hd/anchor.log"
    die "$name: the namespaces' first process (pid $pid) did not get to make its mounts"
}

write_host_configs() {
    local k=$1 name hd addr
    name=$(host_name "$k")
    hd=$(host_dir "$k")
    addr=$(host_addr "$k")
    # Not /etc/docker/daemon.json: whatever the main engine has there is not for these.
    echo '{}' | put_file "$hd/daemon.json" 644
    put_file "$hd/sshd_config" 644 <<EOC
# written by rancher-upgrade's scripts/testbed.sh: the sshd of $name
ListenAddress $addr:22
HostKey $SSH_DIR/${name}_host_ed25519
PidFile none
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile $SSH_DIR/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PrintMotd no
Subsystem sftp internal-sftp
EOC
    SSHD_CONFIG_CHANGED=$PUT_CHANGED
}

# Starts what host K lacks (everything, when its anchor is gone). HOST_STARTED[K]
# says whether anything was.
declare -A HOST_STARTED=()
ensure_host_started() {
    local k=$1 name hd addr anchor run
    name=$(host_name "$k")
    hd=$(host_dir "$k")
    addr=$(host_addr "$k")
    mkdir -p "$hd"
    HOST_STARTED[$k]=0
    write_host_configs "$k"
    if ! anchor=$(host_anchor "$k"); then
        start_host_anchor "$k"
        anchor=$(host_anchor "$k") || die "$name: its first process is not in its network namespace"
        HOST_STARTED[$k]=1
    elif ! ip -n "$name" -4 -o addr show dev eth0 2>/dev/null | grep -qF " $addr/24 "; then
        log "$name: lost its address; restarting it"
        start_host_anchor "$k"
        anchor=$(host_anchor "$k") || die "$name: its first process is not in its network namespace"
        HOST_STARTED[$k]=1
    fi
    # The bridge may be new (ip link del $BRIDGE by hand, then this script).
    ip link set "veth-$name" master "$BRIDGE" up
    run=$(host_var_run "$anchor")
    if ! host_pid "$k" dockerd dockerd >/dev/null; then
        # Pid files of a killed dockerd and its containerd, in the host's /var/run.
        live_pid "$run/docker.pid" dockerd >/dev/null || rm -f "$run/docker.pid"
        live_pid "$run/docker/containerd/containerd.pid" containerd >/dev/null ||
            rm -f "$run/docker/containerd/containerd.pid"
        log "$name: starting dockerd (log: $hd/dockerd.log)"
        start_bg_in "$anchor" "$hd/dockerd.log" "$hd/dockerd.pid" dockerd \
            --config-file "$hd/daemon.json" --data-root "$hd/docker" \
            --exec-root /var/run/docker --pidfile /var/run/docker.pid \
            -H unix:///var/run/docker.sock -H "unix://$(host_socket "$k")" -H "tcp://$addr:2375" --tls=false \
            --bip "10.232.$k.1/24" --cgroup-parent "/$name" \
            --insecure-registry "$REGISTRY" --insecure-registry "$BRIDGE_ADDR:$PORT"
        HOST_STARTED[$k]=1
    fi
    if ! host_pid "$k" sshd sshd >/dev/null; then
        log "$name: starting sshd on $addr:22 (log: $hd/sshd.log)"
        start_bg_in "$anchor" "$hd/sshd.log" "$hd/sshd.pid" /usr/sbin/sshd -D -e -f "$hd/sshd_config"
        HOST_STARTED[$k]=1
    elif [ "$SSHD_CONFIG_CHANGED" = 1 ]; then
        kill -HUP "$(host_pid "$k" sshd sshd)" 2>/dev/null || true
    fi
    if ! host_pid "$k" registry-fwd socat >/dev/null; then
        log "$name: forwarding its $REGISTRY to $BRIDGE_ADDR:$PORT (log: $hd/registry-fwd.log)"
        start_bg_in "$anchor" "$hd/registry-fwd.log" "$hd/registry-fwd.pid" socat \
            "TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork" "TCP:$BRIDGE_ADDR:$PORT"
        HOST_STARTED[$k]=1
    fi
}

# What is missing on host K, or nothing when all answers.
host_missing() {
    local k=$1 name addr anchor
    name=$(host_name "$k")
    addr=$(host_addr "$k")
    anchor=$(host_anchor "$k") || {
        echo "its namespaces"
        return
    }
    unix_ping "$(host_socket "$k")" || {
        echo "dockerd on $(host_socket "$k")"
        return
    }
    unix_ping "$(host_var_run "$anchor")/docker.sock" || {
        echo "dockerd on its /var/run/docker.sock"
        return
    }
    tcp_ping "$addr" || {
        echo "dockerd on tcp://$addr:2375"
        return
    }
    ssh_banner "$addr" || {
        echo "sshd on $addr:22"
        return
    }
    ns_registry_up "$name" || echo "the registry on its $REGISTRY"
}

# Waits for host K to answer; names the daemon that died or did not.
wait_host() {
    local k=$1 deadline=$2 name hd missing="" f
    name=$(host_name "$k")
    hd=$(host_dir "$k")
    while :; do
        missing=$(host_missing "$k")
        [ -z "$missing" ] && return 0
        for f in anchor:sleep dockerd:dockerd sshd:sshd registry-fwd:socat; do
            if ! host_pid "$k" "${f%%:*}" "${f#*:}" >/dev/null; then
                show_log_tail "$hd/${f%%:*}.log"
                die "$name: ${f%%:*} exited (waiting for $missing); see $hd/${f%%:*}.log, then run this again"
            fi
        done
        ((SECONDS < deadline)) || break
        sleep 0.2
    done
    case $missing in
        dockerd*) f=dockerd ;;
        sshd*) f=sshd ;;
        "the registry"*) f=registry-fwd ;;
        *) f=anchor ;;
    esac
    show_log_tail "$hd/$f.log"
    die "$name: no answer from $missing within $HOST_START_SECONDS s; see $hd/$f.log"
}

# After a start: what tests do, docker over ssh (docker system dial-stdio there).
check_host_ssh() {
    local k=$1 addr out
    addr=$(host_addr "$k")
    if ! out=$(DOCKER_HOST="ssh://root@$addr" timeout 30 docker version --format '{{.Server.Version}}' 2>&1 </dev/null); then
        printf 'testbed:   %s\n' "$out" >&2
        die "$(host_name "$k"): 'DOCKER_HOST=ssh://root@$addr docker version' fails; try 'ssh -v root@$addr docker version'"
    fi
}

# "ref digest" for each image of PREPULL, from the registry.
PREPULL_WANTED=()
prepull_wanted() {
    [ ${#PREPULL_WANTED[@]} -gt 0 ] && return 0
    local entry repo tag digest
    for entry in "${PREPULL[@]}"; do
        read -r repo tag <<<"$entry"
        digest=${DIGESTS[$repo:$tag]:-$(registry_digest "$repo" "$tag")}
        [ -n "$digest" ] || die "$REGISTRY/$repo:$tag is not in the registry"
        PREPULL_WANTED+=("$REGISTRY/$repo:$tag" "$digest")
    done
}

# The refs of PREPULL_WANTED the engine on unix socket $1 lacks, or has another
# digest of.
engine_lacks() {
    local i ref json
    for ((i = 0; i < ${#PREPULL_WANTED[@]}; i += 2)); do
        ref=${PREPULL_WANTED[i]}
        if ! json=$(curl -sf --max-time 10 --unix-socket "$1" "http://engine/images/$ref/json" 2>/dev/null) ||
            [[ $json != *"\"${ref%:*}@${PREPULL_WANTED[i + 1]}\""* ]]; then
            echo "$ref"
        fi
    done
}

# host_pull K REF...: pulls into host K, then drops the stand-ins they replaced.
host_pull() {
    local k=$1 sock ref
    shift
    sock=$(host_socket "$k")
    for ref in "$@"; do
        echo "$(host_name "$k"): pulling $ref"
        DOCKER_HOST="unix://$sock" docker pull -q "$ref" >/dev/null || return 1
    done
    # Untagged now; kept while a container uses one.
    DOCKER_HOST="unix://$sock" docker image prune -f --filter "label=org.rancher-upgrade.standin=1" >/dev/null || true
}

ensure_hosts() {
    [ "$HOSTS" -gt 0 ] || return 0
    local k pids=() failed=0
    if ! is_root; then
        for ((k = 1; k <= HOSTS; k++)); do
            [ -z "$(host_missing "$k")" ] ||
                die "host $(host_name "$k") is not up and only root can start it (or set RANCHER_UPGRADE_TESTBED_HOSTS=0)"
        done
        return 0
    fi
    CGROUP_MOUNTS=$(cgroup_mounts)
    [ -n "$CGROUP_MOUNTS" ] || die "no cgroups mounted under /sys/fs/cgroup to give the other hosts"
    ensure_ssh
    ensure_bridge
    ensure_registry_forwarder
    local deadline
    for ((k = 1; k <= HOSTS; k++)); do ensure_host_started "$k"; done
    deadline=$((SECONDS + HOST_START_SECONDS))
    for ((k = 1; k <= HOSTS; k++)); do
        wait_host "$k" "$deadline"
        if [ "${HOST_STARTED[$k]}" = 1 ]; then
            check_host_ssh "$k"
            log "$(host_name "$k") is up: $(host_addr "$k")"
        fi
    done
    # Pulls, the hosts in parallel.
    prepull_wanted
    local lacking pulling=()
    for ((k = 1; k <= HOSTS; k++)); do
        lacking=$(engine_lacks "$(host_socket "$k")")
        [ -n "$lacking" ] || continue
        # shellcheck disable=SC2086 # refs, one a word
        host_pull "$k" $lacking >"$(host_dir "$k")/pull.log" 2>&1 &
        pids+=($!)
        pulling+=("$k")
    done
    for ((k = 0; k < ${#pids[@]}; k++)); do
        wait "${pids[k]}" || failed=${pulling[k]}
        sed 's/^/testbed: /' "$(host_dir "${pulling[k]}")/pull.log" >&2
    done
    [ "$failed" = 0 ] || die "$(host_name "$failed"): pulling the stand-in images failed (see above)"
}

# scripts/testbed.sh --down-hosts: every process, namespace and link of the other
# hosts (their data roots stay), the forwarder on the bridge, the bridge.
down_hosts() {
    is_root || die "only root can take the other hosts down"
    local k name names=() d pid
    for d in "$HOSTS_DIR"/ruhost*; do [ -d "$d" ] && names+=("${d##*/}"); done
    while read -r name _; do
        case $name in ruhost[0-9]*) names+=("$name") ;; esac
    done < <(ip netns list 2>/dev/null)
    for name in $(printf '%s\n' "${names[@]}" | sort -u); do
        k=${name#ruhost}
        case $k in '' | *[!0-9]*) continue ;; esac
        kill_host "$k"
        if [ -e "/run/netns/$name" ]; then ip netns del "$name" || die "ip netns del $name failed"; fi
        ip link del "veth-$name" 2>/dev/null || true
        log "$name is down"
    done
    if pid=$(live_pid "$TESTBED_DIR/registry-fwd.pid" socat); then kill "$pid" 2>/dev/null || true; fi
    rm -f "$TESTBED_DIR/registry-fwd.pid"
    if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE" || die "ip link del $BRIDGE failed"; fi
    while iptables -w 10 -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null; do
        iptables -w 10 -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
    done
    down_db
    log "the other hosts are down"
}

# --------------------------------------------------------- database stand-in --
# rudb (testbed/db/rudb.py): the external MySQL of the stand-in servers, on the
# bridge's address here, so that containers on every engine reach it (the other
# hosts' through the bridge, this machine's dockerd and podman's by their own
# routes to it). Its databases, its log and the password of its user live in
# $DB_DIR; a change of rudb.py or of the password restarts it, which closes the
# connections of the servers that use it (they exit, as Rancher does when its
# database goes).
DB_DIR=$TESTBED_DIR/db
DB_PORT=${RANCHER_UPGRADE_TESTBED_DB_PORT:-3306}
DB_USER=cattle
DB_SRC=$ROOT/testbed/db/rudb.py

db_python() { if [ -x /usr/bin/python3 ]; then echo /usr/bin/python3; else command -v python3; fi; }

# The pid of the running rudb, when its pid file names one.
db_pid() {
    local pid
    pid=$(cat "$DB_DIR/rudb.pid" 2>/dev/null) || return 1
    proc_running "$pid" || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "rudb.py serve " || return 1
    echo "$pid"
}

# shellcheck disable=SC2016 # $1 and $2 of the inner bash
db_up() { # its greeting, within 3 s
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2" && head -c 7 <&3' _ "$BRIDGE_ADDR" "$DB_PORT" 2>/dev/null |
        grep -q '^RUDB 1 '
}

db_sum() { cat "$DB_SRC" "$DB_DIR/password" | sha256sum | cut -d' ' -f1; }

ensure_db() {
    local pid sum deadline
    mkdir -p "$DB_DIR"
    chmod 700 "$DB_DIR"
    if [ ! -s "$DB_DIR/password" ]; then
        log "database stand-in: a new password for its user $DB_USER ($DB_DIR/password)"
        (umask 077 && printf 'rudb-%s\n' "$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')" >"$DB_DIR/password")
    fi
    sum=$(db_sum)
    if pid=$(db_pid); then
        if [ "$(cat "$DB_DIR/rudb.sum" 2>/dev/null)" = "$sum" ] && db_up; then return 0; fi
        log "database stand-in (pid $pid): changed or not answering; restarting it"
        kill "$pid" 2>/dev/null || true
        deadline=$((SECONDS + 10))
        while proc_running "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
        proc_running "$pid" && kill -KILL "$pid" 2>/dev/null
    fi
    if ! ip -4 -o addr show dev "$BRIDGE" 2>/dev/null | grep -qF " $BRIDGE_ADDR/24 "; then
        is_root || die "the database stand-in listens on $BRIDGE_ADDR, which only root can give $BRIDGE"
        ensure_bridge
    fi
    log "database stand-in on $BRIDGE_ADDR:$DB_PORT (log: $DB_DIR/rudb.log, connections: $DB_DIR/log.jsonl)"
    start_bg "$DB_DIR/rudb.log" "$DB_DIR/rudb.pid" "$(db_python)" "$DB_SRC" serve \
        --listen "$BRIDGE_ADDR:$DB_PORT" --dir "$DB_DIR" --user "$DB_USER" --password-file "$DB_DIR/password"
    echo "$sum" >"$DB_DIR/rudb.sum"
    pid=$(cat "$DB_DIR/rudb.pid")
    deadline=$((SECONDS + 10))
    while ((SECONDS < deadline)); do
        db_up && return 0
        if ! proc_running "$pid"; then
            show_log_tail "$DB_DIR/rudb.log"
            die "the database stand-in (pid $pid) exited before answering on $BRIDGE_ADDR:$DB_PORT"
        fi
        sleep 0.1
    done
    show_log_tail "$DB_DIR/rudb.log"
    die "the database stand-in did not answer on $BRIDGE_ADDR:$DB_PORT within 10 s"
}

down_db() {
    local pid
    if pid=$(db_pid); then
        kill "$pid" 2>/dev/null || true
        log "the database stand-in is down (its databases stay in $DB_DIR)"
    fi
    rm -f "$DB_DIR/rudb.pid"
}

# ------------------------------------------------------------------ podman --
# Rootful podman next to dockerd: the registry marked insecure, and (without
# systemd) cgroupfs and a file for events. Its default ulimits for containers
# (nofile and nproc 1048576) are above what this machine lets it set ("error
# setting rlimit type 6/7"): podman itself runs with at most nofile 1048576 and
# nproc 32768, capped by the caller's hard limits, and so do its containers here.
PODMAN_REGISTRIES=/etc/containers/registries.conf.d/50-rancher-upgrade-testbed.conf
PODMAN_CONF=/etc/containers/containers.conf.d/50-rancher-upgrade-testbed.conf

hard_limit() { # ulimit flag, cap
    local v
    v=$(ulimit -H "$1")
    if [ "$v" = unlimited ] || [ "$v" -gt "$2" ]; then v=$2; fi
    echo "$v"
}

ensure_podman() {
    local nofile nproc changed=0 stamp="$TESTBED_DIR/stamps/podman-probe" sum
    is_root || { have podman && return 0; die "podman is missing and only root can install and set it up"; }
    mkdir -p "${PODMAN_REGISTRIES%/*}" "${PODMAN_CONF%/*}" "$TESTBED_DIR/stamps"
    put_file "$PODMAN_REGISTRIES" 644 <<EOC
# written by rancher-upgrade's scripts/testbed.sh: the test bed's registry is plain http
[[registry]]
location = "$REGISTRY"
insecure = true
EOC
    changed=$PUT_CHANGED
    nofile=$(hard_limit -n 1048576)
    nproc=$(hard_limit -u 32768)
    put_file "$PODMAN_CONF" 644 <<EOC
# written by rancher-upgrade's scripts/testbed.sh (see ensure_podman there)
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
EOC
    [ "$PUT_CHANGED" = 1 ] && changed=1

    prepull_wanted
    local lacking ref have_list plog="$TESTBED_DIR/podman.log"
    have_list=$(podman images --format '{{.Repository}}:{{.Tag}} {{.Digest}}' 2>"$plog") || {
        show_log_tail "$plog"
        die "'podman images' fails; see $plog"
    }
    lacking=$(for ((i = 0; i < ${#PREPULL_WANTED[@]}; i += 2)); do
        grep -qxF "${PREPULL_WANTED[i]} ${PREPULL_WANTED[i + 1]}" <<<"$have_list" || echo "${PREPULL_WANTED[i]}"
    done)
    for ref in $lacking; do
        log "podman: pulling $ref"
        podman pull -q "$ref" >"$plog" 2>&1 || {
            show_log_tail "$plog"
            die "podman pull $ref failed; see $plog"
        }
    done
    if [ -n "$lacking" ]; then
        podman image prune -f --filter "label=org.rancher-upgrade.standin=1" >/dev/null 2>&1 || true
    fi
    # Once per configuration: does a container start at all?
    sum=$(cat "$PODMAN_REGISTRIES" "$PODMAN_CONF" | sha256sum | cut -d' ' -f1)
    if [ "$changed" = 1 ] || [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
        log "podman: a probe container"
        if ! podman run --rm --label org.rancher-upgrade.testbed-probe=1 "$REGISTRY/busybox:latest" true >"$plog" 2>&1; then
            show_log_tail "$plog"
            die "podman cannot run a container with $PODMAN_CONF; see $plog"
        fi
        echo "$sum" >"$stamp"
    fi
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

    if [ "${1:-}" = --down-hosts ]; then
        down_hosts
        return 0
    fi
    ensure_packages
    ensure_docker
    ensure_registry
    ensure_images
    ensure_hosts
    ensure_db
    ensure_podman
    log "ready: registry $REGISTRY, $HOSTS other host(s), the database stand-in, podman"
    echo "RANCHER_UPGRADE_REGISTRY=$REGISTRY"
    echo "RANCHER_UPGRADE_HOSTS=$HOSTS"
    local k addr
    for ((k = 1; k <= HOSTS; k++)); do
        addr=$(host_addr "$k")
        echo "RANCHER_UPGRADE_HOST${k}_UNIX=unix://$(host_socket "$k")"
        echo "RANCHER_UPGRADE_HOST${k}_TCP=tcp://$addr:2375"
        echo "RANCHER_UPGRADE_HOST${k}_SSH=ssh://root@$addr"
        echo "RANCHER_UPGRADE_HOST${k}_ADDR=$addr"
    done
    echo "RANCHER_UPGRADE_DB_HOST=$BRIDGE_ADDR"
    echo "RANCHER_UPGRADE_DB_PORT=$DB_PORT"
    echo "RANCHER_UPGRADE_DB_USER=$DB_USER"
    echo "RANCHER_UPGRADE_DB_PASS=$(cat "$DB_DIR/password")"
    echo "RANCHER_UPGRADE_DB_LOG=$DB_DIR/log.jsonl"
    echo "RANCHER_UPGRADE_PODMAN=$(command -v podman)"
}

case ${1:-} in
    '' | --down-hosts) ;;
    *) die "usage: scripts/testbed.sh [--down-hosts]" ;;
esac
main "$@"

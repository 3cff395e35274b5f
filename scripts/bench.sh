#!/usr/bin/env bash
# Benchmarks rancher-upgrade on the test bed and writes BENCHMARKS.md at the repository root.
#
#   scripts/bench.sh            # as root on Debian, from the repository root (any cwd works)
#
# 1. Downtime: a prober polls /ping every 20 ms; the downtime is the time from the old
#    server's last pong to the new server's first. Variants, alternated in each round:
#      a-backup    rancher-upgrade upgrade --yes               (backup of the data volumes)
#      a-nobackup  rancher-upgrade upgrade --yes --no-backup
#      b           the documented procedure as a bash script   (stop, create, pull, run, rm)
#      c           the floor: docker stop + docker run of the new image, already local
#    and two diagnostic variants that take a-c apart (scripts/bench/floor.sh):
#      c-pulled       c right after pulling the image (as the tool's stop follows its pull)
#      c-pulled-sync  the same with `sync` between the pull and the stop
#    One unrecorded warm-up run (a-backup) comes first.
#    The target is the stand-in v1.6.20 plus a large incompressible layer, pushed as
#    rancher/server:v1.6.20-large; it is removed locally before every a and b run, so they
#    pull it for real.
# 2. Overhead: wall time and docker CLI invocations of `upgrade --dry-run` against one
#    `docker inspect`, and of `upgrade --yes --no-backup` against a bash script running the
#    same docker commands (target local); the peak RSS (VmHWM) of the tool itself and of the
#    docker CLI it runs (scripts/bench/rss.py).
# 3. Backup and restore on a 1 GiB data set (scripts/bench/gen-data.py), each round on one
#    server: the downtime of `upgrade --yes` with and without the backup (the prober, as in
#    part 1, target local); the engine reading the same data (`docker cp DATA:PATH - >
#    /dev/null` of the three data paths; and a one-shot container's `tar -cf -`, the other
#    source there is); then `rollback --yes` (its checksum check and its restore step, from the
#    transcript) against writing the same data back through the engine from a plain tar (the
#    restore's own `docker run -i … tar -xf -`, and `docker cp -a - DATA:/`).
# 4. Engines (scripts/bench/engines.sh): one `upgrade --yes` with backup on this machine's
#    engine, on the test bed's other host by unix socket and over ssh, and on podman, on the
#    same data set, with the backup step's throughput against `docker cp` of the same data
#    over the same engine.
#
# Environment (defaults):
#   BENCH_RUNS=5            rounds of part 1, and runs of each side in part 2's full upgrade
#   BENCH_LAYER_MB=300      size of the target image's large layer
#   BENCH_BACKUP_MB=1024    size of part 3's data set
#   BENCH_BACKUP_RUNS=3     rounds of part 3
#   BENCH_ENGINES_MB=256    size of part 4's data set
#   BENCH_DRYRUN_REPS=15    repetitions of each side of the dry-run comparison
#   BENCH_OUT=BENCHMARKS.md where the report goes (relative to the repository root)
#   BENCH_KEEP=1            keep the work directory (raw data, logs) instead of deleting it
#
# Everything it creates is named bench-<id>-... (containers) or recorded (their anonymous
# volumes, the local and registry tag v1.6.20-large) and removed on exit, failure or Ctrl-C.
# The large layer's blob stays in the test registry's storage (it is byte-for-byte the same
# on every run, so the next run finds it there and uploads nothing).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/scripts/bench"
cd "$ROOT"

RUNS=${BENCH_RUNS:-5}
LAYER_MB=${BENCH_LAYER_MB:-300}
BACKUP_MB=${BENCH_BACKUP_MB:-1024}
BACKUP_RUNS=${BENCH_BACKUP_RUNS:-3}
ENGINES_MB=${BENCH_ENGINES_MB:-256}
DRYRUN_REPS=${BENCH_DRYRUN_REPS:-15}
OUT=${BENCH_OUT:-BENCHMARKS.md}
for v in RUNS LAYER_MB BACKUP_MB BACKUP_RUNS ENGINES_MB DRYRUN_REPS; do
    case ${!v} in '' | *[!0-9]* | 0) echo "bench: BENCH_$v must be a positive integer" >&2 && exit 2 ;; esac
done

T0=$EPOCHREALTIME
log() { printf 'bench: [%5.0f s] %s\n' "$(elapsed)" "$*" >&2; }
die() {
    printf 'bench: ERROR: %s\n' "$*" >&2
    exit 1
}
elapsed() { python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$T0" "$EPOCHREALTIME"; }
sub() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$1" "$2"; }

[ "$(id -u)" = 0 ] || die "run as root (the test bed installs packages and reads docker volumes)"

# --------------------------------------------------------------- test bed --
log "test bed (scripts/testbed.sh)"
TESTBED_OUT=$(bash scripts/testbed.sh)
REG=$(sed -n 's/^RANCHER_UPGRADE_REGISTRY=//p' <<<"$TESTBED_OUT")
if [ -z "$REG" ]; then die "scripts/testbed.sh printed no registry: $TESTBED_OUT"; fi
REAL_DOCKER=$(command -v docker) || die "no docker on PATH"
for tool in curl python3 tar zstd; do command -v "$tool" >/dev/null || die "$tool is missing"; done

log "building the release binary"
cargo build --release --locked -q || die "cargo build --release failed"

WORK=$(mktemp -d /var/tmp/bench-XXXXXX)
ID=$(basename "$WORK" | cut -d- -f2 | tr '[:upper:]' '[:lower:]')
PREFIX="bench-$ID"
# A copy, so that a rebuild elsewhere during the run can't change what is measured.
TOOL="$WORK/rancher-upgrade"
cp target/release/rancher-upgrade "$TOOL"
mkdir -p "$WORK/logs" "$WORK/probes" "$WORK/calls" "$WORK/backups" "$WORK/rss"
RESULTS="$WORK/results.tsv"
printf 'part\tvariant\tround\tdowntime_s\twall_s\textra\tload1\n' >"$RESULTS"

OLD_IMAGE="$REG/rancher/server:v1.6.10"
TARGET="$REG/rancher/server:v1.6.20-large"
MANIFEST_DIGEST=""
PROBER_PID=""
APIPROXY_PID=""

# --------------------------------------------------------------- clean-up --
VOLUMES="$WORK/volumes" # every volume our containers used, one a line
: >"$VOLUMES"

record_volumes() { # containers...: note the volumes they mount
    local c
    for c in "$@"; do
        "$REAL_DOCKER" inspect -f '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}}{{"\n"}}{{end}}{{end}}' \
            "$c" 2>/dev/null | grep . >>"$VOLUMES" || true
    done
}

remove_containers() { # names...: force-remove them and their volumes (recorded first)
    local existing=() c
    for c in "$@"; do
        if "$REAL_DOCKER" inspect --type container "$c" >/dev/null 2>&1; then existing+=("$c"); fi
    done
    [ ${#existing[@]} -gt 0 ] || return 0
    record_volumes "${existing[@]}"
    "$REAL_DOCKER" rm -f "${existing[@]}" >/dev/null 2>&1 || true
}

remove_recorded_volumes() {
    local v
    sort -u "$VOLUMES" | while read -r v; do
        if [ -n "$v" ]; then "$REAL_DOCKER" volume rm "$v" >/dev/null 2>&1 || true; fi
    done
    : >"$VOLUMES"
}

stop_prober() {
    if [ -n "$PROBER_PID" ]; then
        kill "$PROBER_PID" 2>/dev/null || true
        wait "$PROBER_PID" 2>/dev/null || true
        PROBER_PID=""
    fi
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_prober
    if [ -n "$APIPROXY_PID" ]; then kill "$APIPROXY_PID" 2>/dev/null || true; fi
    local ours
    ours=$("$REAL_DOCKER" ps -aq --filter "name=^$PREFIX-" 2>/dev/null || true)
    if [ -n "$ours" ]; then
        # shellcheck disable=SC2086 # ids, one a word
        remove_containers $ours
    fi
    remove_recorded_volumes
    "$REAL_DOCKER" rmi "$TARGET" >/dev/null 2>&1 || true
    if [ -n "$MANIFEST_DIGEST" ]; then
        curl -sf -o /dev/null -X DELETE "http://$REG/v2/rancher/server/manifests/$MANIFEST_DIGEST" ||
            printf 'bench: could not delete the registry tag %s\n' "$TARGET" >&2
    fi
    if [ "${BENCH_KEEP:-}" = 1 ]; then
        printf 'bench: work directory kept: %s\n' "$WORK" >&2
    else
        rm -rf "$WORK"
    fi
    [ "$status" = 0 ] || printf 'bench: failed (status %s); cleaned up\n' "$status" >&2
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers --
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pong() { [ "$(curl -fsS --max-time 1 "http://127.0.0.1:$1/ping" 2>/dev/null)" = pong ]; }

wait_pong() { # port
    local i
    for ((i = 0; i < 600; i++)); do
        pong "$1" && return 0
        sleep 0.05
    done
    die "no pong on port $1 within 30 s"
}

mount_source() { # container destination
    "$REAL_DOCKER" inspect -f "{{range .Mounts}}{{if eq .Destination \"$2\"}}{{.Source}}{{end}}{{end}}" "$1"
}

# new_old NAME PORT DATASET_DIR: a fresh v1.6.10 server, its /var/lib/mysql holding the data set
# new_old NAME PORT DATASET: the old server, its id in OLD_ID.
new_old() {
    local name=$1 port=$2 dataset=$3
    OLD_ID=$("$REAL_DOCKER" run -d --name "$name" --restart=unless-stopped -p "127.0.0.1:$port:8080" \
        "$OLD_IMAGE")
    record_volumes "$name"
    wait_pong "$port" # the entry point has initialised the database by then
    cp -a "$dataset/." "$(mount_source "$name" /var/lib/mysql)/"
    sync # the data is on disk, as a server's is, before anything is measured
}

target_absent() {
    "$REAL_DOCKER" rmi "$TARGET" >/dev/null 2>&1 || true
    ! "$REAL_DOCKER" image inspect "$TARGET" >/dev/null 2>&1 || die "$TARGET is still local after docker rmi"
}

target_local() {
    "$REAL_DOCKER" pull -q "$TARGET" >/dev/null
}

load1() { cut -d' ' -f1 /proc/loadavg; }

# step_seconds TRANSCRIPT PATTERN: the duration the transcript records for the first command
# matching PATTERN ("  exit: exit status: 0, 12.34 s" follows "$ command").
step_seconds() {
    awk -v pat="$2" '
        index($0, "] $ ") && $0 ~ pat { found = 1; next }
        found && /exit: / { sub(/ s$/, ""); print $NF; exit }' "$1"
}

# How the transcript shows the backup's engine command: `docker cp DATA:/var -`.
BACKUP_STEP=' cp [^ ]*:/var -$'

# archived_bytes TRANSCRIPT: the bytes of file content the backup's note counts.
archived_bytes() {
    sed -n 's/.*] backup: .* entries, \([0-9]*\) bytes of files.*/\1/p' "$1" | head -n1
}

# seconds COMMAND...: how long it takes, its output thrown away.
seconds() {
    local s=$EPOCHREALTIME
    "$@" >/dev/null
    sub "$s" "$EPOCHREALTIME"
}

# The restore's own script (what `rancher-upgrade upgrade --dry-run` shows); sh expands it.
# shellcheck disable=SC2016
RESTORE_SCRIPT='set -e; for d in /var/lib/mysql /var/lib/cattle /var/log/mysql; do rm -rf "$d"/* "$d"/.[!.]* "$d"/..?*; done; tar -xf - -C /'

# copy_out CONTAINER: the engine's own read of the three data paths, a tar stream each.
copy_out() {
    local p
    for p in /var/lib/mysql /var/lib/cattle /var/log/mysql; do "$REAL_DOCKER" cp "$1:$p" -; done
}

# engine_reads_and_writes NAME DATA BACKUPS TRANSCRIPT: after a finished upgrade with backup
# (NAME runs the new version on DATA's volumes): the engine reads the same data, the tool rolls
# back (restoring the archive), and the engine writes the same data back from a plain tar.
# Prints KEY=VALUE;... for results.tsv.
engine_reads_and_writes() {
    local name=$1 data=$2 backups=$3 transcript=$4 out=""
    out+="cp_read=$(seconds copy_out "$data")"
    out+=";run_tar_read=$(seconds "$REAL_DOCKER" run --rm --log-driver none --volumes-from "$data" \
        --entrypoint tar "$OLD_IMAGE" -cf - -C / var/lib/mysql var/lib/cattle var/log/mysql)"
    local rollback_log="${transcript%.transcript}.rollback.transcript"
    "$TOOL" rollback --container "$name" --yes --backup-dir "$backups" --log "$rollback_log" \
        --health-timeout 120 >"${rollback_log%.transcript}.log" 2>&1 || die "rollback of $name failed"
    out+=";verify=$(sed -n 's/.*] checked: .*, \([0-9.]*\) s)$/\1/p' "$rollback_log" | head -n1)"
    out+=";restore=$(step_seconds "$rollback_log" 'tar -xf - -C /')"
    # The old server is back on the data; it lets go of it for the writes.
    "$REAL_DOCKER" stop -t 10 "$name" >/dev/null
    zstd -q -dc "$backups"/rancher-data-backup-*.tar.zst >"$WORK/plain.tar"
    out+=";run_write=$(seconds "$REAL_DOCKER" run --rm -i --log-driver none --volumes-from "$data" \
        --entrypoint sh "$OLD_IMAGE" -c "$RESTORE_SCRIPT" restore <"$WORK/plain.tar")"
    "$REAL_DOCKER" run --rm --log-driver none --volumes-from "$data" --entrypoint sh "$OLD_IMAGE" \
        -c "${RESTORE_SCRIPT%; tar -xf - -C /}" >/dev/null
    out+=";cp_write=$(seconds "$REAL_DOCKER" cp -a - "$data:/" <"$WORK/plain.tar")"
    out+=";plain_tar=$(stat -c %s "$WORK/plain.tar")"
    rm -f "$WORK/plain.tar"
    printf '%s' "$out"
}

# measure PART VARIANT ROUND [DATASET]: one upgrade of a fresh server with the prober running;
# appends a line to results.tsv.
measure() {
    local part=$1 variant=$2 round=$3 dataset=${4:-$WORK/dataset-small}
    local name="$PREFIX-$part-r$round-$variant" port
    port=$(free_port)
    local data="$name-data" new="$name-new" parked="$name-v1.6.10"
    local ctl="$WORK/probes/$name.ctl" probes="$WORK/probes/$name.txt" runlog="$WORK/logs/$name.log"
    local transcript="$WORK/logs/$name.transcript" backups="$WORK/backups/$name"
    mkdir -p "$ctl" "$backups"

    case $variant in
        c | tool-local | script-local | *-large) target_local ;;
        *) target_absent ;;
    esac
    new_old "$name" "$port" "$dataset"

    python3 "$BENCH/prober.py" "$port" "$probes" "$ctl" &
    PROBER_PID=$!
    local i
    for ((i = 0; i < 200; i++)); do
        [ -e "$ctl/ready" ] && break
        sleep 0.05
    done
    [ -e "$ctl/ready" ] || die "the prober saw no pong from $name"
    sleep 0.3 # a few pongs of the old server on record

    local load start end rc=0
    load=$(load1)
    start=$EPOCHREALTIME
    case $variant in
        a-backup | a-backup-large | a-nobackup | a-nobackup-large | tool-local)
            local nb=()
            case $variant in a-nobackup* | tool-local) nb=(--no-backup) ;; esac
            python3 "$BENCH/rss.py" "$WORK/rss/$name" \
                "$TOOL" upgrade --container "$name" --to "$TARGET" --data-container "$data" --yes \
                "${nb[@]}" --backup-dir "$backups" --log "$transcript" --health-timeout 120 \
                >"$runlog" 2>&1 || rc=$?
            ;;
        b)
            OLD=$name OLD_IMAGE=$OLD_IMAGE NEW_IMAGE=$TARGET DATA=$data NEW=$new PORT=$port \
                "$BENCH/doc-procedure.sh" >"$runlog" 2>&1 || rc=$?
            ;;
        c | c-pulled | c-pulled-sync)
            local pull_first="" sync_after=""
            case $variant in c-pulled) pull_first=1 ;; c-pulled-sync) pull_first=1 sync_after=1 ;; esac
            OLD=$name NEW_IMAGE=$TARGET NEW=$new PORT=$port PULL_FIRST=$pull_first \
                SYNC_AFTER_PULL=$sync_after "$BENCH/floor.sh" >"$runlog" 2>&1 || rc=$?
            ;;
        script-local)
            OLD=$name OLD_ID=$OLD_ID OLD_IMAGE=$OLD_IMAGE NEW_IMAGE=$TARGET DATA=$data PORT=$port \
                "$BENCH/same-commands.sh" >"$runlog" 2>&1 || rc=$?
            ;;
        *) die "unknown variant $variant" ;;
    esac
    end=$EPOCHREALTIME
    touch "$ctl/done"
    local prc=0
    wait "$PROBER_PID" || prc=$?
    PROBER_PID=""
    if [ "$rc" != 0 ]; then
        tail -n 30 "$runlog" >&2
        die "$variant (round $round) failed with status $rc; log above"
    fi
    [ "$prc" = 0 ] || die "$variant (round $round): the new server did not answer steadily (prober $prc)"

    local gap downtime flaps extra=""
    gap=$(python3 "$BENCH/gap.py" "$probes" "$start") || die "$variant (round $round): no downtime in the probe record"
    read -r downtime _ _ flaps _ <<<"$gap"
    # Failed probes outside the downtime (a slow answer while the old server pulls, say).
    extra="stray_failed_probes=$flaps"
    if [ -f "$transcript" ]; then
        extra+=";pull=$(step_seconds "$transcript" 'docker pull ')"
        if [[ $variant == a-backup* ]]; then
            extra+=";backup=$(step_seconds "$transcript" "$BACKUP_STEP");room=$(step_seconds "$transcript" ' --entrypoint du ')"
            extra+=";archive=$(stat -c %s "$backups"/rancher-data-backup-*.tar.zst)"
            extra+=";bytes=$(archived_bytes "$transcript")"
        fi
        local kb cli_kb
        read -r kb cli_kb <"$WORK/rss/$name"
        extra+=";rss_kb=$kb;cli_rss_kb=$cli_kb"
    fi
    if [ "$variant" = a-backup-large ]; then
        extra+=";$(engine_reads_and_writes "$name" "$data" "$backups" "$transcript")"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$part" "$variant" "$round" "$downtime" \
        "$(sub "$start" "$end")" "$extra" "$load" >>"$RESULTS"
    log "$part $variant round $round: downtime $downtime s, wall $(sub "$start" "$end") s ${extra:+($extra)}"
    remove_containers "$name" "$parked" "$data" "$new"
    remove_recorded_volumes
    rm -rf "$backups"
}

# ----------------------------------------------------------------- set-up --
log "work directory $WORK, names $PREFIX-*"
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cores=$(nproc)"
    echo "cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "mem_gib=$(awk '/MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)"
    echo "os=$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release)"
    echo "kernel=$(uname -r)"
    echo "docker_server=$("$REAL_DOCKER" version -f '{{.Server.Version}}')"
    echo "docker_client=$("$REAL_DOCKER" version -f '{{.Client.Version}}')"
    echo "storage_driver=$("$REAL_DOCKER" info -f '{{.Driver}}')"
    echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "src_dirty=$(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null | wc -l)"
    echo "tool_version=$("$TOOL" --version)"
    echo "runs=$RUNS"
    echo "layer_mb=$LAYER_MB"
    echo "backup_mb=$BACKUP_MB"
    echo "backup_runs=$BACKUP_RUNS"
    echo "engines_mb=$ENGINES_MB"
    echo "dryrun_reps=$DRYRUN_REPS"
    echo "other_containers_start=$("$REAL_DOCKER" ps -q | wc -l)"
    echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$WORK/machine.env"

log "pushing $TARGET ($LAYER_MB MiB layer on top of v1.6.20)"
MANIFEST_DIGEST=$(python3 "$BENCH/mkimage.py" "$REG" v1.6.20 v1.6.20-large "$LAYER_MB" "$WORK" \
    "/var/lib/rancher-upgrade-testbed/bench-large-layer.json")
[[ $MANIFEST_DIGEST == sha256:* ]] || die "mkimage.py printed no digest: $MANIFEST_DIGEST"

log "data sets: a few MB for the upgrades, $BACKUP_MB MiB for the backup"
python3 "$BENCH/gen-data.py" "$WORK/dataset-small" 4
python3 "$BENCH/gen-data.py" "$WORK/dataset-large" "$BACKUP_MB"

# Written data sets and the pushed layer reach the disk now, not during a measured run.
sync

# ------------------------------------------------------- part 1: downtime --
# One unrecorded run first: the first container runs of a session are slower.
measure warmup a-backup 0
# a, b, c as the issue asks; c-pulled and c-pulled-sync take c apart (see floor.sh).
VARIANTS=(a-backup a-nobackup b c c-pulled c-pulled-sync)
for ((r = 1; r <= RUNS; r++)); do
    for ((k = 0; k < ${#VARIANTS[@]}; k++)); do
        measure downtime "${VARIANTS[(r - 1 + k) % ${#VARIANTS[@]}]}" "$r"
    done
done

# ------------------------------------------------------- part 2: overhead --
log "overhead: upgrade --dry-run against docker inspect"
name="$PREFIX-dry"
port=$(free_port)
new_old "$name" "$port" "$WORK/dataset-small"
dry() {
    "$TOOL" upgrade --container "$name" --to "$TARGET" --data-container "$name-data" --dry-run \
        --backup-dir "$WORK/backups" >/dev/null 2>&1
}
dry || die "upgrade --dry-run failed"
"$REAL_DOCKER" inspect "$name" >/dev/null
for ((r = 1; r <= DRYRUN_REPS; r++)); do
    s=$EPOCHREALTIME
    dry
    e=$EPOCHREALTIME
    "$REAL_DOCKER" inspect "$name" >/dev/null
    f=$EPOCHREALTIME
    printf 'overhead\tdry-run\t%s\t\t%s\t\t%s\n' "$r" "$(sub "$s" "$e")" "$(load1)" >>"$RESULTS"
    printf 'overhead\tinspect\t%s\t\t%s\t\t%s\n' "$r" "$(sub "$e" "$f")" "$(load1)" >>"$RESULTS"
done
# Counted once through the wrapper, and the peak RSS.
python3 "$BENCH/rss.py" "$WORK/rss/dry-run" \
    "$TOOL" upgrade --container "$name" --to "$TARGET" --data-container "$name-data" --dry-run \
    --backup-dir "$WORK/backups" >"$WORK/logs/dry-run.plan" 2>&1
BENCH_REAL_DOCKER=$REAL_DOCKER BENCH_DOCKER_LOG="$WORK/calls/dry-run" PATH="$BENCH/bin:$PATH" \
    "$TOOL" upgrade --container "$name" --to "$TARGET" --data-container "$name-data" --dry-run \
    --backup-dir "$WORK/backups" >/dev/null 2>&1
BENCH_REAL_DOCKER=$REAL_DOCKER BENCH_DOCKER_LOG="$WORK/calls/inspect" PATH="$BENCH/bin:$PATH" \
    docker inspect "$name" >/dev/null
# The Engine API requests behind those calls, through a counting proxy.
api_count() { # LOG COMMAND...
    local log=$1
    shift
    python3 "$BENCH/apiproxy.py" "$WORK/api.sock" "$log" &
    APIPROXY_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        [ -S "$WORK/api.sock" ] && break
        sleep 0.05
    done
    DOCKER_HOST="unix://$WORK/api.sock" "$@" >/dev/null 2>&1 || true
    kill "$APIPROXY_PID" 2>/dev/null || true
    wait "$APIPROXY_PID" 2>/dev/null || true
    APIPROXY_PID=""
    rm -f "$WORK/api.sock"
}
api_count "$WORK/calls/api-dry-run" "$TOOL" upgrade --container "$name" --to "$TARGET" \
    --data-container "$name-data" --dry-run --backup-dir "$WORK/backups"
api_count "$WORK/calls/api-inspect" "$REAL_DOCKER" inspect "$name"
remove_containers "$name"
remove_recorded_volumes

log "overhead: upgrade --yes --no-backup against the same docker commands in bash (target local)"
for ((r = 1; r <= RUNS; r++)); do
    if ((r % 2)); then order=(tool-local script-local); else order=(script-local tool-local); fi
    for v in "${order[@]}"; do measure overhead "$v" "$r"; done
done
# One more of each, counted through the wrapper, with the timeline of the calls.
for v in tool-local script-local; do
    name="$PREFIX-count-$v"
    port=$(free_port)
    target_local
    new_old "$name" "$port" "$WORK/dataset-small"
    s=$EPOCHREALTIME
    if [ "$v" = tool-local ]; then
        BENCH_REAL_DOCKER=$REAL_DOCKER BENCH_DOCKER_LOG="$WORK/calls/$v" PATH="$BENCH/bin:$PATH" \
            "$TOOL" upgrade --container "$name" --to "$TARGET" --data-container "$name-data" --yes \
            --no-backup --backup-dir "$WORK/backups" --log "$WORK/logs/$name.transcript" \
            --health-timeout 120 >"$WORK/logs/$name.log" 2>&1 || die "counted tool run failed"
    else
        BENCH_REAL_DOCKER=$REAL_DOCKER BENCH_DOCKER_LOG="$WORK/calls/$v" PATH="$BENCH/bin:$PATH" \
            OLD=$name OLD_ID=$OLD_ID OLD_IMAGE=$OLD_IMAGE NEW_IMAGE=$TARGET DATA="$name-data" PORT=$port \
            "$BENCH/same-commands.sh" >"$WORK/logs/$name.log" 2>&1 || die "counted script run failed"
    fi
    echo "$s $EPOCHREALTIME" >"$WORK/calls/$v.span"
    remove_containers "$name" "$name-v1.6.10" "$name-data"
    remove_recorded_volumes
done

# ------------------------------------------------ part 3: backup and restore --
log "backup and restore: $BACKUP_MB MiB, against the engine's own read and write"
for ((r = 1; r <= BACKUP_RUNS; r++)); do
    if ((r % 2)); then order=(a-nobackup-large a-backup-large); else order=(a-backup-large a-nobackup-large); fi
    for v in "${order[@]}"; do measure backup "$v" "$r" "$WORK/dataset-large"; done
done

# --------------------------------------------------------- part 4: engines --
log "engines: one upgrade with backup on each engine ($ENGINES_MB MiB)"
python3 "$BENCH/gen-data.py" "$WORK/dataset-engines" "$ENGINES_MB"
export TOOL WORK PREFIX REG RESULTS TESTBED_OUT
DATASET="$WORK/dataset-engines" bash "$BENCH/engines.sh" || die "the engines part failed"

# ----------------------------------------------------------------- report --
{
    echo "other_containers_end=$("$REAL_DOCKER" ps -q | wc -l)"
    echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "total_s=$(elapsed)"
    echo "command=$(
        for v in BENCH_RUNS BENCH_LAYER_MB BENCH_BACKUP_MB BENCH_BACKUP_RUNS BENCH_ENGINES_MB BENCH_DRYRUN_REPS; do
            if [ -n "${!v:-}" ]; then printf '%s=%s ' "$v" "${!v}"; fi
        done
    )scripts/bench.sh"
} >>"$WORK/machine.env"
case $OUT in /*) ;; *) OUT="$ROOT/$OUT" ;; esac
python3 "$BENCH/report.py" "$WORK" "$OUT"
log "wrote $OUT"

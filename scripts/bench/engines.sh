#!/usr/bin/env bash
# Part 4 of scripts/bench.sh: one `rancher-upgrade upgrade --yes` with its backup on each engine
# of the test bed, on the same data set, and the backup step's throughput against the engine's
# own `cp CONTAINER:PATH -` of the same data over the same engine, in the same run:
#   local   this machine's dockerd
#   unix    the test bed's other host 1, DOCKER_HOST=unix://… (its own network and mounts)
#   ssh     the same host over DOCKER_HOST=ssh://root@…
#   podman  rootful podman on this machine (--docker podman; its backup streams the old
#           image's tar out of a one-shot container, since `podman cp` gives every file to root)
# Env (from bench.sh): TOOL WORK PREFIX REG RESULTS DATASET TESTBED_OUT. Appends a line per
# engine to RESULTS; removes every container and volume it made, on every engine.
set -euo pipefail

testbed() { sed -n "s/^$1=//p" <<<"$TESTBED_OUT"; }
OLD_IMAGE="$REG/rancher/server:v1.6.10"
TARGET="$REG/rancher/server:v1.6.20"
ENGINES=(local unix ssh podman)
declare -A HOST=([unix]=$(testbed RANCHER_UPGRADE_HOST1_UNIX) [ssh]=$(testbed RANCHER_UPGRADE_HOST1_SSH))
PODMAN=$(testbed RANCHER_UPGRADE_PODMAN)

log() { printf 'bench: engines: %s\n' "$*" >&2; }
sub() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$1" "$2"; }

# eng ENGINE ARGS...: the engine's CLI, pointed at it.
eng() {
    local engine=$1
    shift
    case $engine in
        local) docker "$@" ;;
        unix | ssh) DOCKER_HOST=${HOST[$engine]} docker "$@" ;;
        podman) "$PODMAN" "$@" ;;
    esac
}

# tool ENGINE ARGS...: rancher-upgrade, pointed at the engine.
tool() {
    local engine=$1
    shift
    case $engine in
        local) "$TOOL" "$@" ;;
        unix | ssh) DOCKER_HOST=${HOST[$engine]} "$TOOL" "$@" ;;
        podman) "$TOOL" "$@" --docker "$PODMAN" ;;
    esac
}

step_seconds() {
    awk -v pat="$2" '
        index($0, "] $ ") && $0 ~ pat { found = 1; next }
        found && /exit: / { sub(/ s$/, ""); print $NF; exit }' "$1"
}

cleanup_engine() { # ENGINE NAME: its containers and the volumes they used
    local engine=$1 name=$2 c volumes=()
    for c in "$name" "$name-data" "$name-v1.6.10"; do
        mapfile -t -O "${#volumes[@]}" volumes < <(eng "$engine" inspect -f \
            '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}}{{"\n"}}{{end}}{{end}}' "$c" 2>/dev/null | grep . || true)
        eng "$engine" rm -f "$c" >/dev/null 2>&1 || true
    done
    for v in "${volumes[@]}"; do eng "$engine" volume rm "$v" >/dev/null 2>&1 || true; done
}
CURRENT=""
trap 'if [ -n "$CURRENT" ]; then cleanup_engine $CURRENT; fi' EXIT

DATA_MIB=$(du -sm "$DATASET" | cut -f1)
for engine in "${ENGINES[@]}"; do
    if [ "$engine" != local ] && [ "$engine" != podman ] && [ -z "${HOST[$engine]}" ]; then
        log "no $engine address from the test bed; skipped"
        continue
    fi
    name="$PREFIX-eng-$engine"
    CURRENT="$engine $name"
    backups="$WORK/backups/$name"
    transcript="$WORK/logs/$name.transcript"
    mkdir -p "$backups"
    eng "$engine" run -d --name "$name" --restart=unless-stopped "$OLD_IMAGE" >/dev/null
    # The data set goes in through the engine: it may not share this machine's filesystem.
    tar -C "$DATASET" -cf - . | eng "$engine" cp - "$name:/var/lib/mysql"
    for ((i = 0; i < 300; i++)); do
        [ "$(eng "$engine" exec "$name" curl -fsS --max-time 1 http://127.0.0.1:8080/ping 2>/dev/null)" = pong ] && break
        sleep 0.1
    done
    start=$EPOCHREALTIME
    tool "$engine" upgrade \
        --container "$name" --to "$TARGET" --data-container "$name-data" --yes \
        --backup-dir "$backups" --log "$transcript" --health-timeout 120 \
        >"$WORK/logs/$name.log" 2>&1 || { tail -n 30 "$WORK/logs/$name.log" >&2; exit 1; }
    end=$EPOCHREALTIME
    backup=$(step_seconds "$transcript" ' cp [^ ]*:/var -$| -cf - -C / ')
    bytes=$(sed -n 's/.*] backup: .* entries, \([0-9]*\) bytes of files.*/\1/p' "$transcript" | head -n1)
    archive=$(stat -c %s "$backups"/rancher-data-backup-*.tar.zst)
    # The engine's own read of the same data, over the same engine, right after.
    s=$EPOCHREALTIME
    eng "$engine" cp "$name-data:/var/lib/mysql" - >/dev/null
    cp_read=$(sub "$s" "$EPOCHREALTIME")
    printf 'engines\t%s\t1\t\t%s\tbackup=%s;bytes=%s;archive=%s;cp_read=%s;data_mib=%s\t%s\n' \
        "$engine" "$(sub "$start" "$end")" "$backup" "$bytes" "$archive" "$cp_read" "$DATA_MIB" \
        "$(cut -d' ' -f1 /proc/loadavg)" >>"$RESULTS"
    log "$engine: upgrade $(sub "$start" "$end") s, backup $backup s, cp read $cp_read s"
    cleanup_engine "$engine" "$name"
    CURRENT=""
    rm -rf "$backups"
done

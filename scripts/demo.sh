#!/usr/bin/env bash
# Demo of rancher-upgrade against the stand-in Rancher server of the test bed.
#
#   scripts/demo.sh [extra rancher-upgrade flags...]
#
# 1. sets up the test bed (scripts/testbed.sh: docker, registry, images);
# 2. removes what an earlier demo left behind;
# 3. starts "rancher-demo" on v1.6.10 (embedded database), published on
#    127.0.0.1:$DEMO_PORT (default 18080), and writes some data into it;
# 4. builds the tool (first of all, before anything starts) and runs
#      rancher-upgrade upgrade --container rancher-demo --to v1.6.20 \
#          --data-container rancher-demo-data --backup-dir $DEMO_DIR "$@"
#    interactively (it asks before each step); with stdin not a terminal
#    (scripts/demo.sh </dev/null) it adds --yes;
# 5. shows what is running afterwards, and ends by printing the server's
#    version and the data written in step 3.
#
# Run it again at will: each run starts from scratch. Only containers labelled
# org.rancher-upgrade.demo=1, or named rancher-demo* and made from the test
# bed's stand-in images, are ever removed. The transcript of the upgrade goes
# to $DEMO_DIR (default: ${TMPDIR:-/tmp}/rancher-upgrade-demo), not into the
# repository.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DEMO_PORT=${DEMO_PORT:-18080}
DEMO_DIR=${DEMO_DIR:-${TMPDIR:-/tmp}/rancher-upgrade-demo}
NAME=rancher-demo
DATA_NAME=rancher-demo-data
DEMO_LABEL=org.rancher-upgrade.demo=1
FROM_TAG=v1.6.10
TO_TAG=v1.6.20

say() { printf '\n==> %s\n' "$*" >&2; }
die() {
    printf 'demo: ERROR: %s\n' "$*" >&2
    exit 1
}

say "setting up the test bed"
testbed_out=$(bash scripts/testbed.sh </dev/null)
REGISTRY=$(sed -n 's/^RANCHER_UPGRADE_REGISTRY=//p' <<<"$testbed_out")
if [ -z "$REGISTRY" ]; then
    die "unexpected output from scripts/testbed.sh: $testbed_out"
fi
IMAGE_REPO="$REGISTRY/rancher/server"

# --- the tool, built before anything starts ---------------------------------
say "building rancher-upgrade"
build_log=$(mktemp)
if ! cargo build --release -q 2>"$build_log"; then
    cat "$build_log" >&2
    rm -f "$build_log"
    die "cargo build failed"
fi
rm -f "$build_log"

# --- leftovers of an earlier demo ------------------------------------------
leftovers=()
while read -r id name; do
    [ -n "$id" ] || continue
    name=${name#/}
    labelled=$(docker inspect -f '{{index .Config.Labels "org.rancher-upgrade.demo"}}' "$id" 2>/dev/null || true)
    image=$(docker inspect -f '{{.Config.Image}}' "$id" 2>/dev/null || true)
    if [ "$labelled" = 1 ]; then
        leftovers+=("$id")
    elif [[ $name == "$NAME" || $name == "$NAME"-* ]] && [[ $image == "$IMAGE_REPO":* ]]; then
        # e.g. the data container made by the tool, which may not copy labels
        leftovers+=("$id")
    fi
done < <(docker ps -a --no-trunc --format '{{.ID}} {{.Names}}')
if [ ${#leftovers[@]} -gt 0 ]; then
    say "removing ${#leftovers[@]} container(s) left by an earlier demo"
    docker rm -f -v "${leftovers[@]}" >/dev/null
fi
if docker container inspect "$NAME" >/dev/null 2>&1 || docker container inspect "$DATA_NAME" >/dev/null 2>&1; then
    die "a container named $NAME or $DATA_NAME exists and is not the demo's; remove it first"
fi

# --- the server to upgrade --------------------------------------------------
say "starting $NAME ($IMAGE_REPO:$FROM_TAG) on 127.0.0.1:$DEMO_PORT"
docker run -d --name "$NAME" --label "$DEMO_LABEL" --restart=unless-stopped \
    -p "127.0.0.1:$DEMO_PORT:8080" -e 'DEMO_GREETING=hello world' \
    "$IMAGE_REPO:$FROM_TAG" >/dev/null

ping_url="http://127.0.0.1:$DEMO_PORT/ping"
for ((i = 0; i < 150; i++)); do
    if [ "$(curl -sf --max-time 2 "$ping_url" 2>/dev/null)" = pong ]; then break; fi
    sleep 0.2
done
[ "$(curl -sf --max-time 2 "$ping_url" 2>/dev/null)" = pong ] || {
    docker logs "$NAME" >&2 || true
    die "$NAME did not answer $ping_url within 30 s"
}
echo "server up: $(curl -s "http://127.0.0.1:$DEMO_PORT/version") schema $(curl -s "http://127.0.0.1:$DEMO_PORT/schema")" >&2

docker exec "$NAME" sh -c 'echo "demo data" > /var/lib/mysql/cattle/demo.txt'
echo "wrote /var/lib/mysql/cattle/demo.txt" >&2

# --- the upgrade ------------------------------------------------------------
mkdir -p "$DEMO_DIR"
extra=()
has_flag() { # flag...: whether "$@" of the demo holds one of them
    local arg flag
    for arg in "${DEMO_ARGS[@]}"; do
        for flag in "$@"; do
            [[ $arg == "$flag" || $arg == "$flag"=* ]] && return 0
        done
    done
    return 1
}
DEMO_ARGS=("$@")
has_flag --backup-dir || extra+=(--backup-dir "$DEMO_DIR")
if [ ! -t 0 ] && ! has_flag --yes -y; then
    # Nobody can answer the prompts: say yes to each step up front.
    extra+=(--yes)
fi

say "rancher-upgrade upgrade --container $NAME --to $TO_TAG --data-container $DATA_NAME ${extra[*]} $*"
status=0
target/release/rancher-upgrade upgrade --container "$NAME" --to "$TO_TAG" \
    --data-container "$DATA_NAME" "${extra[@]}" "$@" || status=$?

# --- what it left -------------------------------------------------------------
say "after the upgrade (tool exit status $status)"
docker ps -a --filter "name=^$NAME" --format 'table {{.Names}}\t{{.Image}}\t{{.Status}}' >&2 || true

# The server under the demo's name, whichever version it runs now: the new one, or the
# old one again after a failure and the way back.
version="(no container named $NAME)"
schema="?"
data="(unreadable)"
if docker container inspect "$NAME" >/dev/null 2>&1; then
    if [ "$(curl -sf --max-time 2 "$ping_url" 2>/dev/null)" = pong ]; then
        version=$(curl -sf --max-time 2 "http://127.0.0.1:$DEMO_PORT/version" || echo '?')
        schema=$(curl -sf --max-time 2 "http://127.0.0.1:$DEMO_PORT/schema" || echo '?')
    else
        version="$(docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$NAME" |
            sed -n 's/^CATTLE_RANCHER_SERVER_VERSION=//p') (not answering on $ping_url)"
    fi
    if [ "$(docker inspect -f '{{.State.Running}}' "$NAME")" = true ]; then
        data=$(docker exec "$NAME" cat /var/lib/mysql/cattle/demo.txt 2>/dev/null || echo '(missing)')
    else
        # Stopped: read its volumes through a throwaway container.
        data=$(docker run --rm --label "$DEMO_LABEL" --volumes-from "$NAME" "$REGISTRY/busybox" \
            cat /var/lib/mysql/cattle/demo.txt 2>/dev/null || echo '(missing)')
    fi
fi
say "result"
echo "server:  $NAME $version, schema $schema"
echo "data:    $data"
exit "$status"

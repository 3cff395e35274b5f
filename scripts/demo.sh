#!/usr/bin/env bash
# Demo of rancher-upgrade against the stand-in Rancher server of the test bed.
#
#   scripts/demo.sh [extra rancher-upgrade flags...]
#
# 1. sets up the test bed (scripts/testbed.sh: docker, registry, images);
# 2. removes what an earlier demo left behind;
# 3. starts "rancher-demo" on v1.6.10 (embedded database), published on
#    127.0.0.1:$DEMO_PORT (default 18080), and writes some data into it;
# 4. builds the tool and runs
#      rancher-upgrade upgrade --container rancher-demo --to v1.6.20 \
#          --data-container rancher-demo-data "$@"
# 5. shows what is running afterwards.
#
# Only containers labelled org.rancher-upgrade.demo=1, or named rancher-demo*
# and made from the test bed's stand-in images, are ever removed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DEMO_PORT=${DEMO_PORT:-18080}
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
REGISTRY=${testbed_out#RANCHER_UPGRADE_REGISTRY=}
if [ -z "$REGISTRY" ] || [ "$REGISTRY" = "$testbed_out" ]; then
    die "unexpected output from scripts/testbed.sh: $testbed_out"
fi
IMAGE_REPO="$REGISTRY/rancher/server"

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
say "building rancher-upgrade"
build_log=$(mktemp)
if ! cargo build --release -q 2>"$build_log"; then
    cat "$build_log" >&2
    rm -f "$build_log"
    die "cargo build failed"
fi
rm -f "$build_log"

say "rancher-upgrade upgrade --container $NAME --to $TO_TAG --data-container $DATA_NAME $*"
status=0
target/release/rancher-upgrade upgrade --container "$NAME" --to "$TO_TAG" \
    --data-container "$DATA_NAME" "$@" || status=$?

# --- what it left -------------------------------------------------------------
say "after the upgrade (tool exit status $status)"
docker ps -a --filter "name=$NAME" --format 'table {{.Names}}\t{{.Image}}\t{{.Status}}' >&2 || true
if [ "$(curl -sf --max-time 2 "$ping_url" 2>/dev/null)" = pong ]; then
    echo "server: $(curl -s "http://127.0.0.1:$DEMO_PORT/version") schema $(curl -s "http://127.0.0.1:$DEMO_PORT/schema")" >&2
    echo "data:   $(docker exec "$NAME" cat /var/lib/mysql/cattle/demo.txt 2>/dev/null || echo '(missing)')" >&2
else
    echo "server: not answering on $ping_url" >&2
fi
exit "$status"

#!/usr/bin/env bash
# Variant (b): Rancher 1.x's documented upgrade, the doc's commands in the doc's order
# (stop, create the data container, pull, run, then remove the old server once the new
# one answers). The only additions: --name for the new server (so the bench can clean it
# up) and the host port bound to 127.0.0.1 as the old server had it.
# Env: OLD OLD_IMAGE NEW_IMAGE DATA NEW PORT
set -euo pipefail
PS4='+ $EPOCHREALTIME ' # each traced command with its start time, for the step breakdown
# shellcheck source=scripts/bench/wait-pong.sh
. "$(dirname "${BASH_SOURCE[0]}")/wait-pong.sh"
set -x
docker stop "$OLD"
docker create --volumes-from "$OLD" --name "$DATA" "$OLD_IMAGE"
docker pull "$NEW_IMAGE"
docker run -d --name "$NEW" --volumes-from "$DATA" --restart=unless-stopped -p "127.0.0.1:$PORT:8080" "$NEW_IMAGE"
wait_pong "$PORT"
docker rm "$OLD"

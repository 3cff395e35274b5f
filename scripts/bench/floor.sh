#!/usr/bin/env bash
# Variant (c), the floor: stop the old server and run the new image (already local) on the
# old server's volumes. No pull, no data container, no rename, nothing else.
# Diagnostic variants: PULL_FIRST=1 pulls the image (absent) right before the stop, as
# rancher-upgrade does (c-pulled); SYNC_AFTER_PULL=1 then runs sync before the stop
# (c-pulled-sync). The old server answers during both, so neither is downtime by itself.
# Env: OLD NEW_IMAGE NEW PORT [PULL_FIRST] [SYNC_AFTER_PULL]
set -euo pipefail
PS4='+ $EPOCHREALTIME ' # each traced command with its start time, for the step breakdown
# shellcheck source=scripts/bench/wait-pong.sh
. "$(dirname "${BASH_SOURCE[0]}")/wait-pong.sh"
set -x
if [ "${PULL_FIRST:-}" = 1 ]; then docker pull "$NEW_IMAGE"; fi
if [ "${SYNC_AFTER_PULL:-}" = 1 ]; then sync; fi
docker stop "$OLD"
docker run -d --name "$NEW" --volumes-from "$OLD" --restart=unless-stopped -p "127.0.0.1:$PORT:8080" "$NEW_IMAGE"
wait_pong "$PORT"

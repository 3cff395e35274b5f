#!/usr/bin/env bash
# The docker commands `rancher-upgrade upgrade --yes --no-backup` runs for the bench's
# server (its plan, steps 1-9 of the README's table but the backup), as a plain bash script: the baseline
# of the tool's overhead. The health wait polls /ping every 100 ms like the tool, with curl.
# Env: OLD OLD_ID OLD_IMAGE NEW_IMAGE DATA PORT
set -euo pipefail
PS4='+ $EPOCHREALTIME ' # each traced command with its start time, for the step breakdown
# shellcheck source=scripts/bench/wait-pong.sh
. "$(dirname "${BASH_SOURCE[0]}")/wait-pong.sh"
set -x
PARKED="$OLD-v1.6.10"
# The data container names the server's volumes, as the tool's does (its discovery reads them).
VOLUMES=()
while IFS= read -r volume; do
    if [ -n "$volume" ]; then VOLUMES+=(-v "$volume"); fi
done < <(docker inspect --format '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}}:{{.Destination}}{{"\n"}}{{end}}{{end}}' "$OLD_ID")
docker pull "$NEW_IMAGE"
docker update --restart=no "$OLD"
docker create --name "$DATA" "${VOLUMES[@]}" "$OLD_IMAGE"
docker rename "$OLD" "$PARKED"
docker create --name "$OLD" --volumes-from "$DATA" --restart=unless-stopped -p "127.0.0.1:$PORT:8080" "$NEW_IMAGE"
docker stop -t 60 "$PARKED"
docker start "$OLD"
wait_pong "$PORT"
docker rm "$PARKED"

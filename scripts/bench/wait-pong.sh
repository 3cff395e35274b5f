# shellcheck shell=bash
# Sourced by the bench's procedure scripts: wait_pong PORT [TIMEOUT_S] polls
# http://127.0.0.1:PORT/ping every 100 ms (as rancher-upgrade does) until it answers pong.
wait_pong() {
    local url="http://127.0.0.1:$1/ping" deadline=$((SECONDS + ${2:-120}))
    until [ "$(curl -fsS --max-time 1 "$url" 2>/dev/null)" = pong ]; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "no pong from $url within ${2:-120} s" >&2
            return 1
        fi
        sleep 0.1
    done
}

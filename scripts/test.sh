#!/usr/bin/env bash
# The whole test suite, as CI runs it: brings up the test bed (Docker Engine, a loopback
# registry, the stand-in rancher/server images; see scripts/testbed.sh), then runs every test.
# The end-to-end tests are required here: with no engine they fail instead of skipping.
#
#   scripts/test.sh [cargo test arguments...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Every NAME=value line it prints (the registry, the other hosts, podman) goes to the tests.
testbed_out=$(bash scripts/testbed.sh </dev/null)
while IFS= read -r line; do
    case $line in
        RANCHER_UPGRADE_*=*) export "${line?}" ;;
        *) echo "test.sh: unexpected line from scripts/testbed.sh: $line" >&2 && exit 1 ;;
    esac
done <<<"$testbed_out"
export REQUIRE_DOCKER=1
cargo test --locked "$@"

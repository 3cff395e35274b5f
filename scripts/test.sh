#!/usr/bin/env bash
# The whole test suite, as CI runs it: brings up the test bed (Docker Engine, a loopback
# registry, the stand-in rancher/server images; see scripts/testbed.sh), then runs every test.
# The end-to-end tests are required here: with no engine they fail instead of skipping.
#
#   scripts/test.sh [cargo test arguments...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

registry=$(bash scripts/testbed.sh </dev/null)
export "${registry?}"
export REQUIRE_DOCKER=1
cargo test --locked "$@"

#!/usr/bin/env bash
# The whole test suite, as CI runs it: brings up the test bed (Docker Engine, a loopback
# registry, the stand-in rancher/server images; see scripts/testbed.sh), builds the Debian
# package and checks it installed (scripts/check-package.sh), then runs every test.
# The end-to-end tests are required here: with no engine they fail instead of skipping.
#
#   scripts/test.sh [cargo test arguments...]
#
# With arguments, only those tests run: the package is not built.
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

# The shells the completion tests load the scripts in, and what renders the man page.
missing=()
for program in zsh:zsh fish:fish man:man-db groff:groff-base; do
    command -v "${program%%:*}" >/dev/null || missing+=("${program#*:}")
done
if [ "${#missing[@]}" -gt 0 ] && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$#" -eq 0 ]; then
    scripts/check-package.sh
fi
cargo test --locked "$@"

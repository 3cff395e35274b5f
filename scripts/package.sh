#!/usr/bin/env bash
# Builds the Debian package: the release binary, the man page and the completion scripts it
# generates (into target/assets/, where [package.metadata.deb] in Cargo.toml takes them from),
# then `cargo deb --no-build`. Installs cargo-deb with `cargo install --locked` when missing.
#
#   scripts/package.sh        prints the path of the .deb (under target/debian/) on stdout
#
# Progress goes to stderr.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'package: %s\n' "$*" >&2; }

if ! cargo deb --version >/dev/null 2>&1; then
    log "installing cargo-deb (once)"
    cargo install --locked --quiet cargo-deb >&2
fi

log "building the release binary"
cargo build --release --locked --quiet >&2
binary=target/release/rancher-upgrade

assets=target/assets
rm -rf "$assets"
mkdir -p "$assets"
# -n: no name or time stamp in the archive, so the same page makes the same bytes.
"$binary" man | gzip -9n >"$assets/rancher-upgrade.1.gz"
"$binary" completions bash >"$assets/rancher-upgrade.bash"
"$binary" completions zsh >"$assets/_rancher-upgrade"
"$binary" completions fish >"$assets/rancher-upgrade.fish"

log "packaging"
cargo deb --no-build --locked --quiet | tail -n 1

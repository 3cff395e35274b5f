#!/usr/bin/env bash
# Builds the Debian package (scripts/package.sh), installs it with dpkg into a scratch root
# (the machine's own packages stay as they are), and checks what got installed: the binary
# answers --version, `man -l` reads the page without a warning, the completions sit where
# bash, zsh and fish look for them, and dpkg lists every file. Installs man-db when missing.
#
#   scripts/check-package.sh     prints one line per check; exits non-zero on the first failure
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail() {
    printf 'check-package: FAILED: %s\n' "$*" >&2
    exit 1
}
ok() { printf 'check-package: ok: %s\n' "$*"; }

if ! command -v man >/dev/null; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends man-db >/dev/null
fi

started=$SECONDS
deb=$(scripts/package.sh)
[ -f "$deb" ] || fail "scripts/package.sh made no package (got '$deb')"
ok "built $deb in $((SECONDS - started)) s"

root=$(mktemp -d /tmp/rancher-upgrade-deb.XXXXXX)
trap 'rm -rf "$root"' EXIT
# A root of its own: dpkg keeps its database there too. The dependencies (libc) are the
# machine's, not the scratch root's, hence --force-depends.
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
: >"$root/var/lib/dpkg/status"
if ! said=$(dpkg --root="$root" --force-depends --force-script-chrootless -i "$deb" 2>&1); then
    fail "dpkg -i $deb: $said"
fi
ok "installed with dpkg --root $root"

installed=$(dpkg --root="$root" -L rancher-upgrade)
for file in \
    /usr/bin/rancher-upgrade \
    /usr/share/man/man1/rancher-upgrade.1.gz \
    /usr/share/bash-completion/completions/rancher-upgrade \
    /usr/share/zsh/vendor-completions/_rancher-upgrade \
    /usr/share/fish/vendor_completions.d/rancher-upgrade.fish \
    /usr/share/doc/rancher-upgrade/README.md; do
    grep -qx "$file" <<<"$installed" || fail "the package does not install $file"
    [ -s "$root$file" ] || fail "$root$file is missing or empty"
done
ok "dpkg lists the binary, the man page, the three completions and the README"

version=$("$root/usr/bin/rancher-upgrade" --version)
[ "$version" = "rancher-upgrade $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)" ] ||
    fail "--version says '$version'"
ok "$version"

warnings=$(MANWIDTH=80 MANPAGER=cat man -l "$root/usr/share/man/man1/rancher-upgrade.1.gz" 2>&1 >/dev/null)
[ -z "$warnings" ] || fail "man -l warns: $warnings"
MANWIDTH=80 MANPAGER=cat man -l "$root/usr/share/man/man1/rancher-upgrade.1.gz" 2>/dev/null |
    grep -q '^EXIT STATUS' || fail "man -l shows no EXIT STATUS"
ok "man -l reads the installed page without a warning"

bash -c "source '$root/usr/share/bash-completion/completions/rancher-upgrade' && complete -p rancher-upgrade" >/dev/null ||
    fail "the installed bash completion does not load"
ok "the installed bash completion loads"

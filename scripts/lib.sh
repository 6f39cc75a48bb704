# Sourced by every script in scripts/ (not run on its own): what they share.
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# This directory, absolute: found once, while the path the script was started by is
# still valid whatever it `cd`s to next.
SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# The repository's root, whatever directory the script was started from.
repo_root() {
  dirname "$SCRIPTS_DIR"
}

# install_packages WHAT ARG...: installs Debian packages (ARG: what `apt-get install`
# takes, packages and options) when run as root on a system with apt-get; otherwise
# says what to install and returns 1. apt's output goes to stderr, so a script's stdout
# stays the one line it prints (a URL, a path).
install_packages() {
  local what=$1
  shift
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $what from Debian packages..." >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
  else
    echo "$what not found: install it (apt-get install $*)" >&2
    return 1
  fi
}

# pg_bin_dir: prints the directory of the PostgreSQL binaries (initdb, pg_ctl, psql),
# the newest /usr/lib/postgresql/<version>/bin (Debian's layout) holding initdb and
# pg_ctl, else PATH's pg_ctl's directory if it also holds initdb; returns 1 when there
# is none. The embedded database (`embedded_pg`) looks in the same places.
pg_bin_dir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  if command -v pg_ctl >/dev/null 2>&1; then
    d=$(dirname "$(command -v pg_ctl)")
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  fi
  return 1
}

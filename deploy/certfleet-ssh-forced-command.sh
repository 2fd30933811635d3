#!/bin/sh
# certfleet SSH connector, endpoint side: the forced command of the dedicated deploy user's key.
#
#   authorized_keys:  restrict,command="/usr/local/lib/certfleet/certfleet-ssh-forced-command.sh /etc/certfleet/ssh-connector.conf" ssh-ed25519 AAAA... certfleet-hub
#
# The config file (owned by root, not writable by the deploy user) holds one directive per line:
#   allow DIR           files may be placed in DIR and below (repeatable; no spaces in DIR)
#   config_test CMD...  the only command `run config_test` may run (the subscription's configTest must equal it)
#   reload CMD...       the only command `run reload` may run (the subscription's reload must equal it)
#
# The hub speaks exactly these requests (SSH_ORIGINAL_COMMAND), nothing else is possible with this key:
#   read PATH                          "absent", or "MODE UID GID" then the bytes
#   stage PATH MODE OWNER GROUP        stdin → PATH.certfleet-new with MODE, OWNER/GROUP ("-": leave as is)
#   commit PATH...                     renames each PATH.certfleet-new onto PATH
#   discard PATH...                    removes staged PATH.certfleet-new files
#   remove PATH...                     removes PATH (a rollback of a file that did not exist before)
#   run config_test|reload SECONDS     stdin: the command; runs it when it equals the configured one
# Paths must be absolute and canonical, inside an allowed directory reached without symlinks, and never a symlink.
# Exit codes: 64 refused request, otherwise the command's own.
set -eu
umask 077
PATH=/usr/sbin:/usr/bin:/sbin:/bin

CONF=${1:-}
die() {
  printf 'certfleet-forced-command: %s\n' "$*" >&2
  exit 64
}
[ -n "$CONF" ] && [ -r "$CONF" ] || die "no readable config file given (forced command argument)"

allowed_dirs=$(sed -n 's/^allow[[:space:]]\{1,\}//p' "$CONF")
configured() { sed -n "s/^$1[[:space:]]\{1,\}//p" "$CONF" | head -n 1; }

check_path() {
  p=$1
  case $p in
  /*) ;;
  *) die "not an absolute path: $p" ;;
  esac
  case $p in
  */../* | */.. | */./* | */. | *//* | */) die "path is not in canonical form: $p" ;;
  esac
  dir=$(dirname -- "$p")
  real=$(cd -P -- "$dir" 2>/dev/null && pwd) || die "directory does not exist: $dir"
  [ "$real" = "$dir" ] || die "directory $dir is reached through a symlink ($real)"
  ok=
  for a in $allowed_dirs; do
    case "$real/" in "${a%/}/"*) ok=1 ;; esac
  done
  [ -n "$ok" ] || die "not under an allowed directory: $p"
  [ ! -L "$p" ] || die "refusing a symlink: $p"
  [ ! -L "$p.certfleet-new" ] || die "refusing a symlink: $p.certfleet-new"
}

set -f # no globbing while splitting the request into words
# shellcheck disable=SC2086 # splitting on spaces is the protocol
set -- ${SSH_ORIGINAL_COMMAND:-}
[ $# -ge 1 ] || die "no request (this key only deploys certificates)"
request=$1
shift

case $request in
read)
  [ $# -eq 1 ] || die "usage: read PATH"
  check_path "$1"
  if [ -e "$1" ]; then
    stat -c '%a %u %g' -- "$1"
    exec cat -- "$1"
  fi
  echo absent
  ;;
stage)
  [ $# -eq 4 ] || die "usage: stage PATH MODE OWNER GROUP"
  check_path "$1"
  case $2 in [0-7][0-7][0-7] | [0-7][0-7][0-7][0-7]) ;; *) die "not an octal mode: $2" ;; esac
  tmp="$1.certfleet-new"
  rm -f -- "$tmp"
  cat >"$tmp"
  [ "$3" = - ] || chown -- "$3" "$tmp" || {
    rm -f -- "$tmp"
    die "cannot give $tmp to owner $3"
  }
  [ "$4" = - ] || chgrp -- "$4" "$tmp" || {
    rm -f -- "$tmp"
    die "cannot give $tmp to group $4"
  }
  chmod -- "$2" "$tmp"
  ;;
commit)
  for p in "$@"; do check_path "$p"; done
  for p in "$@"; do mv -f -- "$p.certfleet-new" "$p"; done
  ;;
discard)
  for p in "$@"; do check_path "$p"; done
  for p in "$@"; do rm -f -- "$p.certfleet-new"; done
  ;;
remove)
  for p in "$@"; do check_path "$p"; done
  for p in "$@"; do rm -f -- "$p"; done
  ;;
run)
  [ $# -eq 2 ] || die "usage: run config_test|reload SECONDS"
  case $1 in config_test | reload) ;; *) die "unknown command step: $1" ;; esac
  case $2 in '' | *[!0-9]*) die "not a number of seconds: $2" ;; esac
  want=$(configured "$1")
  [ -n "$want" ] || die "no $1 command is configured in $CONF"
  IFS= read -r asked || true
  [ "$asked" = "$want" ] || die "$1 command \"$asked\" is not the configured one; set the subscription's command to the $1 line of $CONF"
  exec timeout -k 5 "$2" /bin/sh -c "$want"
  ;;
*)
  die "unknown request: $request"
  ;;
esac

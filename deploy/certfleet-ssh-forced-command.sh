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
# The hub speaks exactly these requests, nothing else is possible with this key:
#   read PATH...                       one line per PATH, "absent PATH" or "MODE UID GID SIZE PATH", then the
#                                      bytes of the present files, in the order of their lines
#   put                                stdin: files to place (below); each is staged, then all are renamed into place
#   remove PATH...                     removes PATH (a rollback of a file that did not exist before)
#   run config_test|reload SECONDS     stdin: the command; runs it when it equals the configured one
# Each is either the whole SSH request (SSH_ORIGINAL_COMMAND; one session per request, as hubs before protocol 1
# send them) or one of a sequence in a session (SSH_ORIGINAL_COMMAND "session 1"): the script answers
# "certfleet-session 1", then reads requests from stdin, one line each, "NONCE REQUEST ARGS...", followed by the
# request's own stdin lines (put: its file lines up to "end"; run: the command line). After each answer it writes
# "NONCE STATUS" on stdout and "NONCE" on stderr (the command's own exit status for run, 0 otherwise), so the hub
# knows where the answer ends on both streams; NONCE is a fresh random word per request. A refused request ends the
# session with exit 64 (the hub opens another one if it has more to do); the end of stdin ends it with exit 0.
# One session serves a whole deploy: sshd starts its session process and the two shells once instead of four times.
# `put` reads lines: "file PATH MODE OWNER GROUP" (OWNER/GROUP "-": leave as is), then "d TEXT" lines whose TEXT
# is a printf format that only escapes bytes (\ooo), then the next "file", and "end" last. Every file is written
# to DIR/.certfleet-new/NAME first (DIR: the file's directory); only when all are there and the stream ended with
# "end" are they renamed onto their paths (one `mv` per directory) and the emptied staging directories removed;
# otherwise the staged files are removed.
# Paths must be absolute and canonical, inside an allowed directory reached without symlinks, and never a symlink.
# Shell builtins do the checks and the writing: each request starts as few processes as it can (the hub pushes to
# many hosts at once; a fork is the expensive part of a request). Nothing the script starts reads its stdin.
# Exit codes: 64 refused request, otherwise the command's own (single requests) or 0 (a session).
set -eu
umask 077
PATH=/usr/sbin:/usr/bin:/sbin:/bin

CONF=${1:-}
staged=
dirs=
# A request that ends early leaves nothing staged behind (and no staging directory it emptied).
trap '[ -z "$staged" ] || rm -f -- $staged; for d in $dirs; do rmdir -- "$d/.certfleet-new" 2>/dev/null || :; done' EXIT
die() {
  printf 'certfleet-forced-command: %s\n' "$*" >&2
  exit 64
}
[ -n "$CONF" ] && [ -r "$CONF" ] || die "no readable config file given (forced command argument)"

allowed_dirs=
config_test=
reload=
while read -r word rest || [ -n "${word:-}" ]; do
  case $word in
  allow) allowed_dirs="$allowed_dirs $rest" ;;
  config_test) [ -n "$config_test" ] || config_test=$rest ;;
  reload) [ -n "$reload" ] || reload=$rest ;;
  esac
done <"$CONF"

# Sets `dir` to the path's directory.
check_path() {
  p=$1
  case $p in
  /*) ;;
  *) die "not an absolute path: $p" ;;
  esac
  case $p in
  */../* | */.. | */./* | */. | *//* | */) die "path is not in canonical form: $p" ;;
  esac
  dir=${p%/*}
  [ -n "$dir" ] || dir=/
  cd -P -- "$dir" 2>/dev/null || die "directory does not exist: $dir"
  [ "$PWD" = "$dir" ] || die "directory $dir is reached through a symlink ($PWD)"
  ok=
  for a in $allowed_dirs; do
    case "$dir/" in "${a%/}/"*) ok=1 ;; esac
  done
  [ -n "$ok" ] || die "not under an allowed directory: $p"
  [ ! -L "$p" ] || die "refusing a symlink: $p"
}

# Opens fd 3 on the staged copy of PATH with MODE (umask when MODE has no x or special bits, else chmod later).
stage_open() {
  p=$1 mode=$2
  case $mode in [0-7][0-7][0-7] | [0-7][0-7][0-7][0-7]) ;; *) die "not an octal mode: $mode" ;; esac
  check_path "$p"
  sd=$dir/.certfleet-new
  [ ! -L "$sd" ] || die "refusing a symlink: $sd"
  [ -d "$sd" ] || mkdir -- "$sd"
  [ -O "$sd" ] || die "$sd does not belong to the deploy user"
  case " $dirs " in *" $dir "*) ;; *) dirs="$dirs $dir" ;; esac
  sf=$sd/${p##*/}
  staged="$staged $sf"
  if [ -e "$sf" ] || [ -L "$sf" ]; then rm -f -- "$sf"; fi
  m=$mode
  case $m in 0???) m=${m#0} ;; esac
  chmod_later=
  case $m in
  [0246][0246][0246])
    r=${m#?}
    umask "$((7 - ${m%??}))$((7 - ${r%?}))$((7 - ${r#?}))"
    ;;
  *) chmod_later=$mode ;;
  esac
  exec 3>"$sf"
  umask 077
}

stage_close() {
  exec 3>&-
  [ -z "$chmod_later" ] || chmod -- "$chmod_later" "$sf"
  [ "$owner" = - ] && [ "$group" = - ] && return
  o=$owner g=$group
  [ "$o" != - ] || o=
  [ "$g" != - ] || g=
  chown -- "$o${g:+:$g}" "$sf" || die "cannot give $sf to ${owner}:${group}"
}

# read PATH...
req_read() {
  [ $# -ge 1 ] || die "usage: read PATH..."
  present=
  for p in "$@"; do
    check_path "$p"
    if [ -e "$p" ]; then
      [ -f "$p" ] || die "not a regular file: $p"
      present="$present $p"
    else
      printf 'absent %s\n' "$p"
    fi
  done
  [ -n "$present" ] || return 0
  # shellcheck disable=SC2086
  stat -c '%a %u %g %s %n' -- $present
  # shellcheck disable=SC2086
  cat -- $present
}

# put (the files come on stdin, up to their "end" line)
req_put() {
  [ $# -eq 0 ] || die "usage: put (the files come on stdin)"
  dirs=
  open=
  done=
  while IFS= read -r line; do
    case $line in
    "d "*)
      [ -n "$open" ] || die "data before any file line"
      printf "${line#d }" >&3
      ;;
    "file "*)
      [ -z "$open" ] || stage_close
      # shellcheck disable=SC2086 # words of the line, globbing is off
      set -- $line
      [ $# -eq 5 ] || die "usage: file PATH MODE OWNER GROUP"
      owner=$4 group=$5
      stage_open "$2" "$3"
      open=1
      ;;
    end)
      [ -z "$open" ] || stage_close
      open=
      done=1
      break
      ;;
    *) die "unknown line in the upload (this script is older or newer than the hub?)" ;;
    esac
  done
  [ -n "$done" ] || die "the upload ended before its end line; nothing was renamed"
  # Everything is staged: one rename per file, one mv per directory, then the emptied staging directory goes
  # (another put into the same directory may still use it: then it stays, and that put removes it).
  for d in $dirs; do
    set --
    for s in $staged; do
      case $s in "$d/.certfleet-new/"*) set -- "$@" "$s" ;; esac
    done
    mv -f -- "$@" "$d/"
  done
  staged=
  for d in $dirs; do rmdir -- "$d/.certfleet-new" 2>/dev/null || :; done
  dirs=
}

# remove PATH...
req_remove() {
  for p in "$@"; do check_path "$p"; done
  for p in "$@"; do rm -f -- "$p"; done
}

# run config_test|reload SECONDS (the command line on stdin); `status` is the command's exit status.
req_run() {
  [ $# -eq 2 ] || die "usage: run config_test|reload SECONDS"
  case $1 in
  config_test) want=$config_test ;;
  reload) want=$reload ;;
  *) die "unknown command step: $1" ;;
  esac
  case $2 in '' | *[!0-9]*) die "not a number of seconds: $2" ;; esac
  [ -n "$want" ] || die "no $1 command is configured in $CONF"
  IFS= read -r asked || true
  [ "$asked" = "$want" ] || die "$1 command \"$asked\" is not the configured one; set the subscription's command to the $1 line of $CONF"
  if timeout -k 5 "$2" /bin/sh -c "$want" </dev/null; then status=0; else status=$?; fi
}

# One request (its words); sets `status`.
serve() {
  request=$1
  shift
  status=0
  case $request in
  read) req_read "$@" ;;
  put) req_put "$@" ;;
  remove) req_remove "$@" ;;
  run) req_run "$@" ;;
  *) die "unknown request: $request" ;;
  esac
}

# session 1: requests from stdin until it ends, each answer followed by its NONCE on both streams.
session() {
  [ "$1" = 1 ] || die "session protocol $1 is not spoken here (this script speaks 1): install the deploy/certfleet-ssh-forced-command.sh of the hub's certfleet version"
  printf 'certfleet-session 1\n'
  while IFS= read -r line; do
    # shellcheck disable=SC2086 # splitting on spaces is the protocol, globbing is off
    set -- $line
    [ $# -ge 2 ] || die "not a request line: NONCE REQUEST ARGS..."
    nonce=$1
    shift
    case $nonce in '' | *[!A-Za-z0-9]*) die "not a request nonce: $nonce" ;; esac
    serve "$@"
    printf '%s %s\n' "$nonce" "$status"
    printf '%s\n' "$nonce" >&2
  done
}

set -f # no globbing while splitting requests into words
# shellcheck disable=SC2086 # splitting on spaces is the protocol
set -- ${SSH_ORIGINAL_COMMAND:-}
[ $# -ge 1 ] || die "no request (this key only deploys certificates)"
if [ "$1" = session ]; then
  [ $# -eq 2 ] || die "usage: session VERSION"
  session "$2"
  exit 0
fi
serve "$@"
exit "$status"

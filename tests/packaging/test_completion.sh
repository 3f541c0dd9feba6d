#!/usr/bin/env bash
# Drives relsupd's shell completion (packaging/completion/) in bash and zsh
# against the real binary and a real daemon, and checks what it offers.
#
#   test_completion.sh RELSUPD COMPLETION_DIR
#
# RELSUPD is the built `relsupd` (its relsupd-core beside it); COMPLETION_DIR
# holds relsupd.bash and _relsupd. The script starts `relsupd daemon` on a
# state dir and socket in a new directory under /tmp, makes apps `blog` and
# `shop` and release v1 of shop, then completes command lines:
#
# - bash, twice: plain (`bash --norc`, the file sourced), and with the
#   bash-completion package, which loads the file by its installed name
#   from a completions/ directory and lends it _init_completion and
#   _filedir. The line is split into COMP_WORDS as readline does (at blanks
#   and at = and :), COMP_CWORD/COMP_LINE/COMP_POINT set for the cursor at
#   its end, and the function that `complete -p relsupd` names is called.
# - zsh (`zsh -f`): compinit with COMPLETION_DIR first in fpath (so
#   `#compdef relsupd` must register _relsupd), then _relsupd called with
#   words/CURRENT/PREFIX set. compadd, compset and zsh's file, command, user
#   and group completers only work inside a real completion widget, so they
#   are stubbed: compadd keeps the words matching PREFIX, as it would.
#
# Each case runs in a new shell; the words it offers must be exactly the
# expected ones, and the shell must print nothing else at all. Last, a copy
# of relsupd.bash broken on purpose must fail a case, so these checks can
# fail. Exits 1 naming every mismatch; 0 when there is none. Needs bash,
# zsh, bash-completion and coreutils; never touches /var/lib or /run. The
# daemon is stopped by its pid on any exit.
set -euo pipefail

die() {
  echo "test_completion: $*" >&2
  exit 1
}

(($# == 2)) || die "usage: test_completion.sh RELSUPD COMPLETION_DIR"
relsupd=$(realpath -e "$1") || die "no relsupd binary at '$1'"
compdir=$(realpath -e "$2") || die "no completion directory at '$2'"
[[ -x $relsupd ]] || die "'$relsupd' is not executable"
for f in relsupd.bash _relsupd; do
  [[ -r $compdir/$f ]] || die "'$compdir/$f' is missing"
done
command -v zsh >/dev/null || die "zsh is not installed (apt-get install zsh)"
bash_completion=/usr/share/bash-completion/bash_completion
[[ -r $bash_completion ]] ||
  die "$bash_completion is missing (apt-get install bash-completion)"

tmp=$(mktemp -d /tmp/relsupd-completion.XXXXXX)
daemon_pid=
cleanup() {
  local i
  if [[ -n $daemon_pid ]] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$daemon_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

sock=$tmp/relsupd.sock
"$relsupd" daemon --state-dir "$tmp/state" --socket "$sock" \
  </dev/null >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
ctl() { "$relsupd" ctl --socket "$sock" "$@"; }
for ((i = 0; i < 100; i++)); do
  kill -0 "$daemon_pid" 2>/dev/null ||
    die "the daemon exited at start-up:$(printf '\n'; cat "$tmp/daemon.log")"
  ctl info >/dev/null 2>&1 && break
  sleep 0.1
done
((i < 100)) || die "the daemon did not answer on $sock within 10 s"

# Apps blog and shop; shop gets release v1 (an artifact with a process file
# and no build command: nothing is compiled, nothing is started).
# step CMD...: runs CMD, its stdout in $out; on failure, dies with its
# output and the daemon's log.
step() {
  if ! out=$("$@" 2>"$tmp/step.err"); then
    die "setting up failed: $*:$(printf '\n'; cat "$tmp/step.err")
daemon log:
$(cat "$tmp/daemon.log")"
  fi
}
mkdir -p "$tmp/src" "$tmp/cwd/src"
printf 'processes:\n  web:\n    command: sleep 1000\n' >"$tmp/src/relsupd.yaml"
step ctl app create shop
step ctl app create blog
step "$relsupd" build "$tmp/src" -o "$tmp/shop.tar.gz"
step ctl build import shop "$tmp/shop.tar.gz" --quiet
step ctl release create shop --build "$out"
[[ $out == v1 ]] || die "release create printed '$out', not v1"

# A directory to complete paths in: a file and a directory.
touch "$tmp/cwd/shop.yaml"
# bash-completion looks for completions/relsupd under XDG_DATA_HOME.
mkdir -p "$tmp/xdg/bash-completion/completions"
ln -s "$compdir/relsupd.bash" "$tmp/xdg/bash-completion/completions/relsupd"

# The shells' environment: relsupd's directory first on PATH; the daemon
# reached through RELSUPD_SOCKET (the CLI's default) unless a case says
# otherwise.
base_env=(HOME="$tmp" PATH="$(dirname "$relsupd"):/usr/bin:/bin"
  XDG_DATA_HOME="$tmp/xdg" LANG=C.UTF-8 TERM=dumb)

cat >"$tmp/harness.bash" <<'EOF'
# complete_line LINE: completes LINE with the cursor at its end as readline
# would, and writes COMPREPLY to fd 3, one per line.
complete_line() {
  local line=$1 i c kind k word=''
  COMP_WORDS=()
  # A word ends at a blank, and where = or : start or stop: readline makes
  # a run of them (its COMP_WORDBREAKS) a word of its own.
  for ((i = 0; i < ${#line}; i++)); do
    c=${line:i:1}
    if [[ $c == [[:blank:]] ]]; then
      [[ -n $word ]] && COMP_WORDS+=("$word")
      word=''
      kind=''
      continue
    fi
    k=word
    [[ $c == [=:] ]] && k=break
    if [[ -n $word && $k != "$kind" ]]; then
      COMP_WORDS+=("$word")
      word=''
    fi
    word+=$c
    kind=$k
  done
  COMP_WORDS+=("$word")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMP_LINE=$line
  COMP_POINT=${#line}
  COMP_TYPE=9
  COMP_KEY=9
  local spec fn
  spec=$(complete -p relsupd 2>/dev/null) || { echo "no complete spec for relsupd" >&2; return 1; }
  fn=${spec#*-F }
  fn=${fn%% *}
  COMPREPLY=()
  "$fn" relsupd "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
  ((${#COMPREPLY[@]} == 0)) || printf '%s\n' "${COMPREPLY[@]}" >&3
}
EOF

cat >"$tmp/harness.zsh" <<'EOF'
# complete_line WORD...: calls _relsupd for the last word, as compsys would;
# the words it adds go to fd 3, one per line.
fpath=("$COMPDIR" $fpath)
# The dump (one per COMPDIR) spares each case compinit's scan of fpath.
autoload -Uz compinit && compinit -u -d "$ZCOMPDUMP"
[[ ${_comps[relsupd]-} == _relsupd ]] ||
  { print -u2 "compinit did not register _relsupd for relsupd (${_comps[relsupd]-nothing})"; exit 1 }
# Builtins that only work inside a completion widget, and the completers
# that call them: stand-ins that report what they were asked.
compadd() {
  while (( $# )) && [[ $1 != -- ]]; do shift; done
  (( $# )) && shift
  local w
  for w; do [[ $w == ${PREFIX}* ]] && print -r -u3 -- "$w"; done
  return 0
}
compset() { return 1 }
_files() { print -r -u3 -- "<files${*:+ $*}>" }
_command_names() { print -r -u3 -- "<commands>" }
_users() { print -r -u3 -- "<users>" }
_groups() { print -r -u3 -- "<groups>" }
complete_line() {
  local -a words
  words=("$@")
  local CURRENT=$# PREFIX=${@[-1]} IPREFIX= QIPREFIX= SUFFIX= ISUFFIX=
  # Its status is compsys's: 1 when it added nothing.
  _relsupd || true
}
EOF

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# run_case SHELL LINE: completes LINE in SHELL (bash, bash-completion or
# zsh); the offered words, sorted, go to $tmp/out, the shell's own output to
# $tmp/noise. Extra VAR=VALUE words before SHELL go to its environment.
run_case() {
  local -a env=("${base_env[@]}" RELSUPD_SOCKET="$sock")
  while [[ $1 == *=* ]]; do
    env+=("$1")
    shift
  done
  local shell=$1 line=$2 rc=0
  local -a words
  read -ra words <<<"$line"
  [[ $line == *" " ]] && words+=("")
  (
    cd "$tmp/cwd"
    # The scripts in single quotes are the inner shell's.
    # shellcheck disable=SC2016
    case $shell in
    bash)
      env -i "${env[@]}" bash --norc --noprofile -c \
        'source "$1"; source "$2"; complete_line "$3"' \
        bash "$compdir/relsupd.bash" "$tmp/harness.bash" "$line"
      ;;
    bash-completion)
      # Loaded as bash-completion loads it: by name, on first use.
      env -i "${env[@]}" bash --norc --noprofile -c \
        'source "$1"; source "$2"
         if declare -F _comp_load >/dev/null; then _comp_load relsupd
         else __load_completion relsupd; fi
         complete_line "$3"' \
        bash "$bash_completion" "$tmp/harness.bash" "$line"
      ;;
    zsh)
      env -i "${env[@]}" COMPDIR="$compdir" \
        ZCOMPDUMP="$tmp/zcompdump${compdir//\//_}" zsh -f -c \
        'source "$1"; shift; complete_line "$@"' \
        zsh "$tmp/harness.zsh" "${words[@]}"
      ;;
    esac
  ) 3>"$tmp/out.raw" >"$tmp/noise" 2>&1 || rc=$?
  sort -u "$tmp/out.raw" >"$tmp/out"
  if ((rc != 0)); then
    echo "exit code $rc" >>"$tmp/noise"
  fi
}

# expect SHELL LINE WORD...: LINE completed in SHELL offers exactly WORDS
# (none: nothing at all) and prints nothing.
expect() {
  local -a env=()
  while [[ $1 == *=* ]]; do
    env+=("$1")
    shift
  done
  local shell=$1 line=$2
  shift 2
  run_case "${env[@]}" "$shell" "$line"
  local want got
  want=$(if (($#)); then printf '%s\n' "$@" | sort -u; fi)
  got=$(cat "$tmp/out")
  local what="$shell: '$line<Tab>'${env[*]:+ (${env[*]})}"
  if [[ $got != "$want" ]]; then
    fail "$what offers [${got//$'\n'/ }], expected [${want//$'\n'/ }]"
  fi
  if [[ -s $tmp/noise ]]; then
    fail "$what printed:$(printf '\n'; sed 's/^/  | /' "$tmp/noise")"
  fi
  [[ $got == "$want" && ! -s $tmp/noise ]]
}

# The cases, in every shell. Lines ending in a blank complete a new word.
for shell in bash bash-completion zsh; do
  expect "$shell" "relsupd " build ctl daemon || true
  expect "$shell" "relsupd ctl act" activate || true
  expect "$shell" "relsupd ctl app " apply create delete list show || true
  expect "$shell" "relsupd ctl ps " blog shop || true
  expect "$shell" "relsupd ctl ps s" shop || true
  expect "$shell" "relsupd ctl app delete " blog shop || true
  expect "$shell" "relsupd ctl activate shop " v1 || true
  expect "$shell" "relsupd ctl activate shop v1 --strategy " start-first stop-first || true
  expect "$shell" "relsupd ctl activate shop v1 --no" --no-wait || true
  expect "$shell" "relsupd ctl logs --stream " err out || true
  expect "$shell" "relsupd ctl help build " import list || true
  expect "$shell" "relsupd ctl run shop " -- || true
  # The daemon at --socket, not at $RELSUPD_SOCKET, before or after the
  # verb, with or without =.
  expect "$shell" "relsupd ctl --socket /nonexistent ps " || true
  expect RELSUPD_SOCKET=/nonexistent "$shell" "relsupd ctl --socket $sock releases " blog shop || true
  expect RELSUPD_SOCKET=/nonexistent "$shell" "relsupd ctl logs shop --socket=$sock --release " v1 || true
  # No daemon at all: nothing, silently.
  expect RELSUPD_SOCKET=/nonexistent "$shell" "relsupd ctl activate shop " || true
done

# Values after = and local things: the shells differ in how they are given.
for shell in bash bash-completion; do
  # readline replaces only the text after the =.
  expect "$shell" "relsupd ctl activate shop v1 --strategy=sto" stop-first || true
  expect "$shell" "relsupd ctl app apply s" shop.yaml src || true
  expect "$shell" "relsupd build s" src || true
  expect "$shell" "relsupd ctl run shop -- relsupd-cor" relsupd-core || true
done
expect zsh "relsupd ctl activate shop v1 --strategy=sto" --strategy=stop-first || true
expect zsh "relsupd ctl app apply s" "<files>" || true
expect zsh "relsupd build s" "<files -/>" || true
expect zsh "relsupd ctl run shop -- relsupd-cor" "<commands>" || true

# The checks above can fail: a copy of relsupd.bash that no longer knows
# APP for an app name must not offer shop and blog.
mkdir -p "$tmp/broken"
sed 's/^    APP) _relsupd_ask/    APX) _relsupd_ask/' "$compdir/relsupd.bash" >"$tmp/broken/relsupd.bash"
cp "$compdir/_relsupd" "$tmp/broken/_relsupd"
cmp -s "$compdir/relsupd.bash" "$tmp/broken/relsupd.bash" &&
  fail "could not break a copy of relsupd.bash (its APP case moved?)"
saved_compdir=$compdir saved_failures=$failures
compdir=$tmp/broken
for shell in bash zsh; do
  if expect "$shell" "relsupd ctl ps " blog shop 2>/dev/null; then
    saved_failures=$((saved_failures + 1))
    echo "FAIL: $shell: a relsupd.bash broken on purpose still offered blog shop" >&2
  fi
done
compdir=$saved_compdir failures=$saved_failures

if ((failures)); then
  echo "test_completion: $failures check(s) failed" >&2
  exit 1
fi
echo "test_completion: bash (plain and with bash-completion) and zsh offer the expected words"

# shellcheck shell=bash
# bash completion for relsupd, installed as
# /usr/share/bash-completion/completions/relsupd. zsh runs the same function
# (packaging/completion/_relsupd loads this file).
#
# Nothing about relsupd's command line is written down here. Verbs,
# sub-verbs, options, which options take a value, the choices of a value and
# the names of the positionals (APP, RELEASE, FILE, ...) are read from the
# `--help` of the very binary being completed (CLI11's layout), so that
# completion cannot drift from the code. The help texts are cached for the
# command line being typed only. What --help cannot say is kept here: what
# kind of word a positional or an option's value is (an app, a release, a
# file, a command, a user), by its name.
#
# App and release names come from the daemon (`ctl --json app list`,
# `ctl --json releases APP`), at the `--socket` given on the line if there
# is one; a daemon that does not answer gives nothing, and prints nothing.
#
# Works in bash (4.2 or newer) with or without the bash-completion package,
# and in zsh, whose _relsupd sources this file with ksh emulation: so no
# bash-only syntax here (no ${!x}, mapfile, read -a, BASH_REMATCH, declare
# -A), and no locals named after zsh's special parameters (path, status,
# words only as bash-completion's own).

# Runs relsupd quietly: stdin from /dev/null, stderr dropped, and a deadline
# (where coreutils' timeout is there) so a daemon that hangs cannot hang the
# shell.
_relsupd_run() {
  if command -v timeout >/dev/null 2>&1; then
    timeout 3 "$@" </dev/null 2>/dev/null
  else
    "$@" </dev/null 2>/dev/null
  fi
}

# _relsupd_help BIN [WORD...]: sets _relsupd_text to the output of
# `BIN WORD... --help` (empty when it fails), from the cache when it is
# there.
_relsupd_help() {
  local key="$*" i
  for ((i = 0; i < ${#_relsupd_cache_keys[@]}; i++)); do
    if [[ ${_relsupd_cache_keys[i]} == "$key" ]]; then
      _relsupd_text=${_relsupd_cache_texts[i]}
      return 0
    fi
  done
  _relsupd_text=$(_relsupd_run "$@" --help) || _relsupd_text=
  _relsupd_cache_keys+=("$key")
  _relsupd_cache_texts+=("$_relsupd_text")
}

# Reads CLI11's help text in _relsupd_text into _relsupd_subs (sub-verb
# names), _relsupd_opts ("NAMES|TAKES|CHOICES|TYPE": NAMES as printed,
# `-n,--lines`; TAKES 1 when it takes a value; CHOICES `a,b` from a type
# `TEXT:{a,b}`) and _relsupd_pos (positional names in order, `CMD...` for
# one that takes the rest).
#
# CLI11 prints sections ("Positionals:", "Options:", "Subcommands:" or a
# group's name), each after a blank line, one entry a line: two spaces, the
# name (with an option's type), padded to column 30, then the description;
# a name too long for that has its description on the next lines, indented
# by 30 spaces. The first block that is not laid out so is the footer
# (free text), where reading stops.
_relsupd_parse() {
  local line section='' blank=0 rest field pad tok names type takes choices
  _relsupd_subs=()
  _relsupd_opts=()
  _relsupd_pos=()
  while IFS= read -r line; do
    if [[ -z $line ]]; then
      section=
      blank=1
      continue
    fi
    if ((blank)) && [[ $line == [!\ ]*: ]]; then
      section=${line%:}
      blank=0
      continue
    fi
    blank=0
    [[ -n $section ]] || continue
    # The description of the entry above, on a line of its own.
    [[ $line == "                              "* ]] && continue
    [[ $line == "  "[!\ ]* ]] || return 0
    rest=${line#  }
    field=${rest%%  *}
    if ((${#field} < 28)); then
      pad=${line:2+${#field}:28-${#field}}
      [[ $pad == *[!\ ]* ]] && return 0
    elif [[ $rest != "$field" ]]; then
      return 0
    fi
    if [[ $section == Positionals ]]; then
      tok=${field%% *}
      [[ " $field " == *" ... "* ]] && tok+=...
      _relsupd_pos+=("$tok")
    elif [[ $field == -* ]]; then
      names=${field%% *}
      type=
      [[ $field == *" "* ]] && type=${field#* } && type=${type%% *}
      takes=0
      choices=
      # A type is upper case (TEXT, INT, TEXT:FILE); a flag may be followed
      # by "Excludes: --x" or "Needs: --y".
      if [[ $type == [A-Z]* && ${type%%:*} != *[!A-Z0-9_]* ]]; then
        takes=1
        if [[ $type == *:\{*\} ]]; then
          choices=${type#*:\{}
          choices=${choices%\}}
        fi
      else
        type=
      fi
      _relsupd_opts+=("$names|$takes|$choices|$type")
    elif [[ $field == [a-z]* && $field != *[!a-z0-9-]* ]]; then
      _relsupd_subs+=("$field")
    else
      return 0
    fi
  done <<<"$_relsupd_text"
}

# Prints the string values of KEY in the objects of the JSON array on
# stdin (compact or indented), leaving out an object whose SKIP is true.
# awk, as the package depends on no JSON tool.
_relsupd_json_values() {
  awk -v want="$1" -v skip="$2" '
    { text = text $0 "\n" }
    END {
      n = length(text); depth = 0; colon = 0; top = ""; k = ""; v = ""; skipped = 0
      for (i = 1; i <= n; i++) {
        c = substr(text, i, 1)
        if (c == "\"") {
          s = ""
          for (i++; i <= n; i++) {
            c = substr(text, i, 1)
            if (c == "\\") { s = s c substr(text, i + 1, 1); i++; continue }
            if (c == "\"") break
            s = s c
          }
          if (colon) { if (depth == 2 && k == want) v = s; colon = 0 }
          else k = s
        } else if (c == ":") {
          colon = 1
        } else if (c == ",") {
          colon = 0
        } else if (c == "{" || c == "[") {
          if (depth == 0) top = c
          depth++; colon = 0
          if (depth == 2) { v = ""; skipped = 0 }
        } else if (c == "}" || c == "]") {
          if (depth == 2 && top == "[" && v != "" && !skipped) print v
          depth--; colon = 0
        } else if (colon && depth == 2 && k == skip && substr(text, i, 4) == "true") {
          skipped = 1
        }
      }
    }'
}

# _relsupd_ask KEY SKIP CTL-ARGS...: adds to COMPREPLY the KEY values of
# `BIN ctl [--socket S] --json CTL-ARGS...` that start with the word. A
# daemon that is not reachable or refuses gives nothing.
_relsupd_ask() {
  local key=$1 skip=$2 out value
  shift 2
  local -a sock=()
  [[ -n $socket ]] && sock=(--socket "$socket")
  out=$(_relsupd_run "$bin" ctl "${sock[@]}" --json "$@") || return 0
  while IFS= read -r value; do
    [[ -n $value && $value == "$vcur"* ]] && COMPREPLY+=("$vpre$value")
  done < <(printf '%s\n' "$out" | _relsupd_json_values "$key" "$skip")
}

# _relsupd_offer WORD...: adds the words that start with the word being
# completed.
_relsupd_offer() {
  local w
  for w in "$@"; do
    [[ $w == "$vcur"* ]] && COMPREPLY+=("$vpre$w")
  done
}

# _relsupd_local KIND: files, dirs, commands, users or groups. In zsh the
# adapter (_relsupd) completes these with its own functions, told through
# _relsupd_want.
_relsupd_local() {
  if [[ -n ${ZSH_VERSION-} ]]; then
    _relsupd_want=$1
    _relsupd_want_prefix=$vpre
    return 0
  fi
  local -a found=()
  local f
  case $1 in
  files | dirs)
    if declare -F _filedir >/dev/null 2>&1; then
      local cur=$vcur
      local -a before=("${COMPREPLY[@]}")
      COMPREPLY=()
      if [[ $1 == dirs ]]; then _filedir -d; else _filedir; fi
      found=("${COMPREPLY[@]}")
      COMPREPLY=("${before[@]}")
    else
      compopt -o filenames 2>/dev/null
      if [[ $1 == dirs ]]; then
        while IFS= read -r f; do found+=("$f"); done < <(compgen -d -- "$vcur")
      else
        while IFS= read -r f; do found+=("$f"); done < <(compgen -f -- "$vcur")
      fi
    fi
    ;;
  commands) while IFS= read -r f; do found+=("$f"); done < <(compgen -c -- "$vcur") ;;
  users) while IFS= read -r f; do found+=("$f"); done < <(compgen -u -- "$vcur") ;;
  groups) while IFS= read -r f; do found+=("$f"); done < <(compgen -g -- "$vcur") ;;
  esac
  for f in "${found[@]}"; do
    COMPREPLY+=("$vpre$f")
  done
}

# The value of option ENTRY ("NAMES|TAKES|CHOICES|TYPE|LEVEL", LEVEL the
# verb path whose help lists it, "ctl" or "ctl app create").
_relsupd_value() {
  local names takes choices type level
  IFS='|' read -r names takes choices type level <<<"$1"
  if [[ -n $choices ]]; then
    # shellcheck disable=SC2086 # one word per choice
    _relsupd_offer ${choices//,/ }
    return 0
  fi
  case ",$names," in
  *,--release,* | *,--to,*)
    [[ -n $app ]] && _relsupd_ask release pruned releases "$app"
    ;;
  *,--user,*) _relsupd_local users ;;
  *,--group,*) _relsupd_local groups ;;
  *,--state-dir,*) _relsupd_local dirs ;;
  *,--config,* | *,--output,* | *,--env-file,*) _relsupd_local files ;;
  *,--socket,*)
    # The control socket of ctl and daemon; `app create --socket` takes
    # NAME=ADDR.
    [[ $level == ctl || $level == daemon ]] && _relsupd_local files
    ;;
  *)
    case $type in
    *:FILE* | *:PATH*) _relsupd_local files ;;
    *:DIR*) _relsupd_local dirs ;;
    esac
    ;;
  esac
  return 0
}

# Finds option NAME in the options seen so far, the deepest verb's first
# (a verb passes the options it does not know to its parent, as `ctl
# activate --socket` does): sets _relsupd_entry, or returns 1.
_relsupd_find_option() {
  local i names
  for ((i = ${#opts[@]} - 1; i >= 0; i--)); do
    names=${opts[i]%%|*}
    if [[ ",$names," == *",$1,"* ]]; then
      _relsupd_entry=${opts[i]}
      return 0
    fi
  done
  return 1
}

# Enters the verb path in `levels`: reads its help into subs, pos and opts.
_relsupd_enter() {
  local o
  _relsupd_help "$bin" "${levels[@]}"
  _relsupd_parse
  subs=("${_relsupd_subs[@]}")
  pos=("${_relsupd_pos[@]}")
  for o in "${_relsupd_opts[@]}"; do
    opts+=("$o|${levels[*]}")
  done
}

# Sets words, cword and cur from COMP_WORDS, COMP_CWORD, COMP_LINE and
# COMP_POINT as bash-completion's _init_completion -n =: does: readline
# splits `--strategy=stop` and `NAME=x:y` into words of their own at = and :,
# which are joined again here where no blank separates them.
_relsupd_words() {
  local i tok at=0 spaced
  words=()
  cword=0
  for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
    tok=${COMP_WORDS[i]}
    spaced=0
    while [[ ${COMP_LINE:$at:1} == [[:space:]] ]]; do
      ((at++))
      spaced=1
    done
    if ((!spaced && i > 0)) && [[ $tok == [=:]* || ${words[${#words[@]} - 1]} == *[=:] ]]; then
      words[${#words[@]} - 1]+=$tok
    else
      words+=("$tok")
    fi
    ((at += ${#tok}))
    ((i == COMP_CWORD)) && cword=$((${#words[@]} - 1))
  done
  ((COMP_CWORD >= ${#COMP_WORDS[@]})) && words+=("") && cword=$((${#words[@]} - 1))
  cur=${words[cword]}
}

_relsupd_complete() {
  [[ -n ${ZSH_VERSION-} ]] && setopt local_options ksh_arrays sh_word_split
  local IFS=$' \t\n'
  # prev: set by bash-completion's _init_completion, unused here.
  # shellcheck disable=SC2034
  local cur prev words cword
  COMPREPLY=()
  if [[ -z ${ZSH_VERSION-} ]] && declare -F _comp_initialize >/dev/null 2>&1; then
    _comp_initialize -n =: || return 0
  elif [[ -z ${ZSH_VERSION-} ]] && declare -F _init_completion >/dev/null 2>&1; then
    _init_completion -n =: || return 0
  else
    _relsupd_words
  fi

  local bin=${words[0]}
  [[ $bin == \~/* ]] && bin=$HOME/${bin#\~/}

  # The cache lives for one command line: it is dropped when a new one
  # starts (HISTCMD moves on) or when the words before this one change.
  local i line_key="${HISTCMD-}|$bin"
  for ((i = 1; i < cword; i++)); do
    line_key+="|${words[i]}"
  done
  if [[ $line_key != "${_relsupd_cache_line-}"* ]]; then
    _relsupd_cache_keys=()
    _relsupd_cache_texts=()
  fi
  _relsupd_cache_line=$line_key

  # Walk the line as CLI11 will parse it. Everything before the word being
  # completed sets the context; words after it may still name the APP or
  # the socket (`ctl logs --release <Tab> shop`).
  local -a levels=() subs=() pos=() opts=() posvals=()
  local -a c_levels=() c_subs=() c_pos=() c_opts=() c_posvals=()
  local w name takes app='' socket='' dashdash=0 posidx=0 expect='' at
  local c_dashdash=0 c_posidx=0 c_expect=''
  local _relsupd_entry _relsupd_text
  local -a _relsupd_subs _relsupd_opts _relsupd_pos
  _relsupd_enter
  for ((i = 1; i < ${#words[@]}; i++)); do
    w=${words[i]}
    at=0
    if ((i == cword)); then
      at=1
      c_levels=("${levels[@]}")
      c_subs=("${subs[@]}")
      c_pos=("${pos[@]}")
      c_opts=("${opts[@]}")
      c_posvals=("${posvals[@]}")
      c_dashdash=$dashdash
      c_posidx=$posidx
      c_expect=$expect
    fi
    if [[ -n $expect ]]; then
      # The value of the option before.
      if ((!at)) && [[ ${expect%%|*} == *--socket* && ${expect##*|} == ctl ]]; then
        socket=$w
      fi
      expect=
    elif ((!dashdash)) && [[ $w == -- ]]; then
      dashdash=1
    elif ((!dashdash)) && [[ $w == -?* ]]; then
      if _relsupd_find_option "${w%%=*}"; then
        takes=${_relsupd_entry#*|}
        takes=${takes%%|*}
        if [[ $w == *=* ]]; then
          if ((!at)) && [[ ${_relsupd_entry%%|*} == *--socket* && ${_relsupd_entry##*|} == ctl ]]; then
            socket=${w#*=}
          fi
        elif ((takes)); then
          expect=$_relsupd_entry
        fi
      fi
    elif ((!dashdash && posidx == 0 && !at)) && [[ " ${subs[*]} " == *" $w "* ]]; then
      levels+=("$w")
      posidx=0
      posvals=()
      _relsupd_enter
    else
      name=
      if ((posidx < ${#pos[@]})); then
        name=${pos[posidx]}
      elif ((${#pos[@]})) && [[ ${pos[${#pos[@]} - 1]} == *... ]]; then
        name=${pos[${#pos[@]} - 1]}
      fi
      ((!at)) && [[ $name == APP ]] && app=$w
      posvals+=("$w")
      ((posidx++))
    fi
  done
  [[ $socket == \~/* ]] && socket=$HOME/${socket#\~/}

  local vcur=$cur vpre=
  opts=("${c_opts[@]}")
  if [[ -n $c_expect ]]; then
    _relsupd_value "$c_expect"
  elif ((!c_dashdash)) && [[ $cur == -* ]]; then
    if [[ $cur == -*=* ]]; then
      if _relsupd_find_option "${cur%%=*}"; then
        vpre=${cur%%=*}=
        vcur=${cur#*=}
        _relsupd_value "$_relsupd_entry"
      fi
    else
      local o n
      local -a all=()
      for o in "${c_opts[@]}"; do
        o=${o%%|*}
        for n in ${o//,/ }; do
          [[ " ${all[*]} " == *" $n "* ]] || all+=("$n")
        done
      done
      _relsupd_offer "${all[@]}"
    fi
  else
    ((c_posidx == 0)) && _relsupd_offer "${c_subs[@]}"
    name=
    if ((c_posidx < ${#c_pos[@]})); then
      name=${c_pos[c_posidx]}
    elif ((${#c_pos[@]})) && [[ ${c_pos[${#c_pos[@]} - 1]} == *... ]]; then
      name=${c_pos[${#c_pos[@]} - 1]}
    fi
    case ${name%...} in
    APP) _relsupd_ask name "" app list ;;
    RELEASE | FROM | TO) [[ -n $app ]] && _relsupd_ask release pruned releases "$app" ;;
    FILE | SRC) _relsupd_local files ;;
    DIR) _relsupd_local dirs ;;
    CMD)
      # `run APP -- CMD [ARG...]`: a command, then its arguments.
      if ((!c_dashdash)); then
        _relsupd_offer --
      elif [[ ${c_pos[c_posidx]-} == CMD* ]]; then
        _relsupd_local commands
      else
        _relsupd_local files
      fi
      ;;
    VERB)
      # `ctl help VERB [SUBVERB]`: the verbs of the verb `help` belongs to.
      local -a verbpath=("${c_levels[@]:0:${#c_levels[@]}-1}")
      _relsupd_help "$bin" "${verbpath[@]}" "${c_posvals[@]}"
      _relsupd_parse
      _relsupd_offer "${_relsupd_subs[@]}"
      ;;
    esac
  fi

  # Where readline breaks words at = or : (COMP_WORDBREAKS), it replaces
  # only the text after the last one: cut that much off every reply.
  if [[ -z ${ZSH_VERSION-} && ${#COMPREPLY[@]} -gt 0 ]]; then
    local strip='' j
    for ((j = ${#cur} - 1; j >= 0; j--)); do
      if [[ ${cur:$j:1} == [=:] && ${COMP_WORDBREAKS-} == *"${cur:$j:1}"* ]]; then
        strip=${cur:0:j+1}
        break
      fi
    done
    [[ -n $strip ]] && COMPREPLY=("${COMPREPLY[@]#"$strip"}")
  fi
  return 0
}

complete -F _relsupd_complete relsupd

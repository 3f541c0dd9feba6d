#!/bin/bash
# test_deb_cycle.sh DEB [DEB_NEWER]: the relsupd Debian package is lintian
# clean, and installs, upgrades, removes and purges in a throwaway root
# doing what a Debian daemon package does, without touching this machine.
#
#  1. lintian: no E: or W: line (what is justified is in the package's
#     override file, /usr/share/lintian/overrides/relsupd).
#  2. The cycle, with `dpkg --root=TMP/root --force-script-chrootless`: the
#     maintainer scripts run here, not in a chroot, with DPKG_ROOT=TMP/root,
#     and must work on that root only. DEB_NEWER (by default DEB repacked
#     with a higher version and a changed conffile) is the upgrade. After
#     each step: package state, every file's type and mode against the
#     .deb's listing, conffiles, groups, directories, the unit's enablement,
#     and the scripts' output (nothing but dpkg's own lines and
#     systemd-sysusers' "Creating group").
#  3. The scripts' systemd branch, which a chrootless install never takes:
#     each script is run as dpkg would on a host where systemd runs, with
#     systemctl, deb-systemd-invoke, deb-systemd-helper, systemd-sysusers,
#     systemd-tmpfiles, policy-rc.d and relsupd replaced by stubs that log
#     their arguments, and the log is compared with what debhelper's
#     snippets (and the daemon-reexec upgrade) would run. Not postrm purge:
#     without DPKG_ROOT it removes this machine's /etc/relsupd (step 2
#     checks purge).
#
# Steps 2 and 3 run in a private mount namespace (unshare -m) where
# /run/systemd/system exists, so only the scripts' DPKG_ROOT checks keep
# them away from systemd; where /etc, /usr and /var are read-only, so a
# script that writes outside the root fails; and where stubs shadow
# systemctl, deb-systemd-invoke and relsupd, so a call to them is seen.
# Outside the namespace the test also compares this machine's relsupd
# groups, directories, unit links and package state before and after.
#
# Needs root (dpkg --root, unshare), dpkg, lintian, systemd-sysusers,
# systemd-tmpfiles and deb-systemd-helper; without them it exits 77 (ctest
# SKIP_RETURN_CODE). Any failed check exits 1 naming what was expected.
set -euo pipefail

unit=relsupd.service
script_path=$(readlink -f "${BASH_SOURCE[0]}")

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
skip() {
  echo "SKIP: $*" >&2
  exit 77
}
step() { echo "== $*"; }
ok() { echo "   ok: $*"; }

# ---------------------------------------------------------------------------
# Inside the mount namespace (the script runs itself with unshare -m).

# Makes the mount namespace what the header says: /run/systemd/system
# exists, /etc, /usr and /var are read-only, and /usr/bin and /usr/sbin
# are symlink farms of the real ones where stubs can replace programs.
ns_setup() {
  local tmp=$1
  if [[ -d /run/systemd ]]; then
    mount -t tmpfs -o mode=0755 tmpfs /run/systemd
  else
    mount -t tmpfs -o mode=0755 tmpfs /run
    mkdir -p /run/systemd
  fi
  mkdir /run/systemd/system
  local d
  for d in /etc /usr /var; do
    mount --bind "$d" "$d"
    mount -o remount,bind,ro "$d"
  done
  for d in /usr/bin /usr/sbin; do
    local real=$tmp/ns-real$d
    mkdir -p "$real"
    mount --bind "$d" "$real"
    mount -t tmpfs -o mode=0755 tmpfs "$d"
    # cp itself is in /usr/bin: the real one, through the bind mount.
    "$tmp/ns-real/usr/bin/cp" -as "$real"/. "$d"/
  done
  rm -f /usr/sbin/policy-rc.d  # the host's, if any: the stub below decides
}

# stub NAME [DIR]: replaces NAME in DIR (/usr/bin) by a stub that appends
# "NAME ARGS" to $STUB_LOG and behaves as the STUB_* variables say.
stub() {
  local name=$1 dir=${2:-/usr/bin}
  rm -f "$dir/$name"
  cat >"$dir/$name" <<EOF
#!/bin/sh
echo "$name \$*" >>"\$STUB_LOG"
case "$name \$*" in
"systemctl --quiet is-active"*) [ "\${STUB_ACTIVE:-0}" = 1 ] ;;
"deb-systemd-helper --quiet was-enabled"*) [ "\${STUB_WAS_ENABLED:-1}" = 1 ] ;;
"policy-rc.d "*) exit "\${STUB_POLICY:-0}" ;;
"relsupd ctl daemon-reexec"*)
  case "\${STUB_REEXEC:-ok}" in
  ok) echo "relsupd 0.1.0 -> 0.1.1 (pid 42, 3 instances) in 61 ms" ;;
  old) echo "relsupd: re-exec failed: method not found: 'daemon.reexec'" >&2; exit 1 ;;
  refused) echo "relsupd: re-exec failed: 1 one-off process is running" >&2; exit 1 ;;
  esac ;;
esac
EOF
  chmod 0755 "$dir/$name"
}

# The lines of FILE that neither dpkg nor systemd-sysusers print in a
# normal install: whatever a maintainer script said. (In the empty root
# relsupd is the only package with /etc, so dpkg tries to remove it on
# purge and warns that it is not empty; on a real system base-files owns it.)
unexpected_output() {
  grep -v -E \
    -e "^dpkg: warning: while removing relsupd, directory '/etc' not empty so not removed$" \
    -e '^\(Reading database \.\.\. ' \
    -e '^Selecting previously unselected package relsupd\.$' \
    -e '^Preparing to unpack .*\.deb \.\.\.$' \
    -e '^Unpacking relsupd \([^)]*\)( over \([^)]*\))? \.\.\.$' \
    -e '^Setting up relsupd \([^)]*\) \.\.\.$' \
    -e '^Removing relsupd \([^)]*\) \.\.\.$' \
    -e '^Purging configuration files for relsupd \([^)]*\) \.\.\.$' \
    -e '^$' \
    -e "^Configuration file '/etc/relsupd/relsupd\.yaml'( \(actually '[^']*/etc/relsupd/relsupd\.yaml'\))?$" \
    -e '^ ==> (Modified \(by you or by a script\) since installation|Package distributor has shipped an updated version|Using current old file as you requested)\.$' \
    -e "^Creating group '?relsupd(-admin)?'? with GID [0-9]+\.$" \
    "$1" || true
}

# The root's dpkg database and files, checked after each step.
pkg_status() {
  dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status} ${Version}' relsupd 2>/dev/null ||
    echo "not known"
}

mode_of() { stat -c '%A %U:%G' "$1"; }

# check_listed_files DEB: every entry of DEB's data is in the root with the
# type, mode and owner the .deb gives it.
check_listed_files() {
  local deb=$1 n=0 perms owner path
  while read -r perms owner _ _ _ path; do
    path=${path#.}
    path=${path%/}
    [[ -z $path ]] && continue
    [[ -e $root$path || -L $root$path ]] || fail "$path of the package is not in the root"
    [[ $(stat -c %A "$root$path") == "$perms" ]] ||
      fail "$path is $(stat -c %A "$root$path") in the root, $perms in the package"
    [[ $(stat -c %U/%G "$root$path") == "$owner" ]] ||
      fail "$path belongs to $(stat -c %U/%G "$root$path"), $owner in the package"
    n=$((n + 1))
  done < <(dpkg-deb -c "$deb" | sed 's/ -> .*//')
  ok "all $n entries of $(basename "$deb") in place with their modes and owners"
}

# check_files_gone DEB: no file or link of DEB is left in the root but the
# conffile, nor a directory only relsupd has.
check_files_gone() {
  local deb=$1 perms path n=0
  while read -r perms _ _ _ _ path; do
    path=${path#.}
    [[ $perms == d* || $path == /etc/relsupd/relsupd.yaml ]] && continue
    [[ -e $root$path || -L $root$path ]] && fail "$path is still in the root after remove"
    n=$((n + 1))
  done < <(dpkg-deb -c "$deb" | sed 's/ -> .*//')
  for path in /usr/libexec/relsupd /usr/share/doc/relsupd; do
    [[ -e $root$path ]] && fail "$path is still in the root after remove"
  done
  ok "none of the $n files and links left but the conffile"
}

conffile_md5_in_db() {
  dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Conffiles}\n' relsupd |
    awk '$1 == "/etc/relsupd/relsupd.yaml" { print $2 }'
}

check_groups() {
  local g
  for g in relsupd relsupd-admin; do
    grep -q "^$g:x:[0-9]*:" "$root/etc/group" || fail "group $g missing from the root's /etc/group"
  done
  ok "groups relsupd and relsupd-admin in the root's /etc/group"
}

check_dir() {
  local path=$1 want=$2
  [[ -d $root$path ]] || fail "directory $path missing from the root"
  [[ $(mode_of "$root$path") == "$want" ]] ||
    fail "$path is $(mode_of "$root$path"), want $want"
}

wants=/etc/systemd/system/multi-user.target.wants/$unit
dsh_state=/var/lib/systemd/deb-systemd-helper-enabled/$unit.dsh-also

check_enabled() {
  [[ -L $root$wants ]] || fail "$wants missing: the postinst did not enable the unit"
  local target
  target=$(readlink "$root$wants")
  [[ $target == /usr/lib/systemd/system/$unit || $target == /lib/systemd/system/$unit ]] ||
    fail "$wants points to '$target', not to the packaged unit"
  [[ -f $root$dsh_state ]] || fail "$dsh_state missing: deb-systemd-helper did not record the enablement"
}

# run_dpkg LABEL ARGS...: dpkg on the root; its output in $tmp/LABEL.out.
run_dpkg() {
  local label=$1
  shift
  local out=$tmp/$label.out rc=0
  : >"$STUB_LOG"
  dpkg --root="$root" --log="$tmp/dpkg.log" --force-script-chrootless \
    --force-confold --path-include='*' "$@" </dev/null >"$out" 2>&1 || rc=$?
  sed 's/^/   | /' "$out"
  [[ $rc == 0 ]] || fail "dpkg $* exited with $rc"
  local extra
  extra=$(unexpected_output "$out")
  [[ -z $extra ]] || fail "the maintainer scripts said more than dpkg and systemd-sysusers do:
$extra"
  [[ ! -s $STUB_LOG ]] || fail "with DPKG_ROOT set, a maintainer script ran on this host:
$(cat "$STUB_LOG")"
  ok "dpkg exited 0; no script output but dpkg's and sysusers'; no systemctl, deb-systemd-invoke or relsupd call"
}

# seed_status DEB STATUS: a status file naming, for each package DEB
# (pre-)depends on, the version installed here (the first installed one of
# each alternative), so that dpkg checks the dependencies as it would on
# this machine and prints no dependency warnings. A dependency this
# machine does not meet is left out and fails the install.
seed_status() {
  local deb=$1 status=$2 alt name provides
  while read -r alt; do
    # shellcheck disable=SC2013 # one word per alternative, versions cut off
    for name in $(sed -E 's/\([^)]*\)//g; s/:[a-z0-9]+//g; s/\|/ /g' <<<"$alt"); do
      if [[ $(dpkg-query -W -f='${Status}' "$name" 2>/dev/null) != *" ok installed" ]]; then
        # A virtual package: the installed package that provides it. (awk
        # reads to the end: an early exit would kill dpkg-query with SIGPIPE,
        # which pipefail turns into a failure.)
        name=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Provides}\n' |
          awk -v n="$name" '$1 == "ii" && !found { for (i = 3; i <= NF; i++) { p = $i; sub(/,$/, "", p); if (p == n) { found = $2 } } } END { print found }')
        [[ -n $name ]] || continue
      fi
      grep -q "^Package: $name\$" "$status" && break
      {
        dpkg-query -W -f='Package: ${Package}\nStatus: install ok installed\nPriority: optional\nSection: misc\nMaintainer: host <root@localhost>\nArchitecture: ${Architecture}\nVersion: ${Version}\n' "$name"
        provides=$(dpkg-query -W -f='${Provides}' "$name")
        [[ -z $provides ]] || echo "Provides: $provides"
        echo "Description: $name as installed on this machine"
        echo
      } >>"$status"
      : >"$root/var/lib/dpkg/info/$name.list"
      break
    done
  done < <(dpkg-deb -f "$deb" Pre-Depends Depends | sed 's/^[A-Za-z-]*: //' | tr ',' '\n')
}

ns_cycle() {
  tmp=$1
  local deb=$2 newer=$3
  ns_setup "$tmp"
  export STUB_LOG=$tmp/stub.log
  local s
  for s in systemctl deb-systemd-invoke relsupd; do stub "$s"; done
  [[ -d /run/systemd/system ]] || fail "could not fake /run/systemd/system"

  root=$tmp/root
  mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
  : >"$root/var/lib/dpkg/status"
  : >"$root/var/lib/dpkg/available"
  seed_status "$deb" "$root/var/lib/dpkg/status"

  local version new_version
  version=$(dpkg-deb -f "$deb" Version)
  new_version=$(dpkg-deb -f "$newer" Version)

  step "install $(basename "$deb") into $root"
  run_dpkg install --install "$deb"
  [[ $(pkg_status) == "install ok installed $version" ]] ||
    fail "after install the package is '$(pkg_status)'"
  check_listed_files "$deb"
  [[ $(mode_of "$root/usr/bin/relsupd") == "-rwxr-xr-x root:root" ]] || fail "/usr/bin/relsupd is $(mode_of "$root/usr/bin/relsupd")"
  [[ $(mode_of "$root/etc/relsupd/relsupd.yaml") == "-rw-r--r-- root:root" ]] || fail "relsupd.yaml is $(mode_of "$root/etc/relsupd/relsupd.yaml")"
  local f
  for f in /usr/lib/systemd/system/$unit /usr/lib/sysusers.d/relsupd.conf \
    /usr/lib/tmpfiles.d/relsupd.conf /usr/libexec/relsupd/relsupd-core \
    /usr/share/doc/relsupd/copyright /usr/share/doc/relsupd/changelog.gz \
    /usr/share/lintian/overrides/relsupd; do
    [[ -f $root$f ]] || fail "$f is not installed"
  done
  ok "binary, unit, sysusers.d, tmpfiles.d, copyright, changelog, lintian overrides installed"
  dpkg-deb -e "$deb" "$tmp/control-old"
  local conffiles
  conffiles=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Conffiles}\n' relsupd | awk 'NF { print $1 }')
  [[ $conffiles == "$(cat "$tmp/control-old/conffiles")" ]] ||
    fail "dpkg knows the conffiles '$conffiles', the package has '$(cat "$tmp/control-old/conffiles")'"
  [[ $(conffile_md5_in_db) == "$(md5sum <"$root/etc/relsupd/relsupd.yaml" | cut -d' ' -f1)" ]] ||
    fail "the conffile's md5 in dpkg's database is not the installed file's"
  ok "conffiles: $conffiles, md5 recorded"
  check_groups
  check_dir /run/relsupd "drwxr-xr-x root:root"
  check_dir /var/lib/relsupd "drwx--x--x root:root"
  ok "/run/relsupd 0755 and /var/lib/relsupd 0711 created"
  check_enabled
  ok "unit enabled: $wants -> $(readlink "$root$wants")"

  step "the admin edits the conffile, adds a file; the daemon writes state"
  echo "# edited by the admin (test_deb_cycle.sh)" >>"$root/etc/relsupd/relsupd.yaml"
  local edited
  edited=$(md5sum <"$root/etc/relsupd/relsupd.yaml")
  echo "local notes" >"$root/etc/relsupd/notes.txt"
  echo "ledger" >"$root/var/lib/relsupd/ledger.db"
  mkdir -p "$root/var/lib/relsupd/apps/shop/releases/v1"
  echo "socket" >"$root/run/relsupd/relsupd.sock"

  step "upgrade to $(basename "$newer") ($version -> $new_version)"
  run_dpkg upgrade --install "$newer"
  [[ $(pkg_status) == "install ok installed $new_version" ]] ||
    fail "after upgrade the package is '$(pkg_status)'"
  check_listed_files "$newer"
  [[ $(md5sum <"$root/etc/relsupd/relsupd.yaml") == "$edited" ]] ||
    fail "the upgrade did not keep the admin's edit of /etc/relsupd/relsupd.yaml"
  dpkg-deb -x "$newer" "$tmp/newer-files"
  local shipped_md5
  shipped_md5=$(md5sum <"$tmp/newer-files/etc/relsupd/relsupd.yaml" | cut -d' ' -f1)
  if ! cmp -s "$tmp/newer-files/etc/relsupd/relsupd.yaml" "$root/etc/relsupd/relsupd.yaml.dpkg-dist"; then
    dpkg-deb -x "$deb" "$tmp/old-files"
    if ! cmp -s "$tmp/old-files/etc/relsupd/relsupd.yaml" "$tmp/newer-files/etc/relsupd/relsupd.yaml"; then
      fail "the new package changed the conffile and the admin changed it too, but there is no relsupd.yaml.dpkg-dist with the new version"
    fi
  else
    ok "the new version of the conffile is beside it as relsupd.yaml.dpkg-dist"
  fi
  [[ $(conffile_md5_in_db) == "$shipped_md5" ]] ||
    fail "dpkg's database does not record the new package's conffile md5"
  [[ -f $root/etc/relsupd/notes.txt && -f $root/var/lib/relsupd/ledger.db ]] ||
    fail "the upgrade lost the admin's file or the daemon's state"
  check_groups
  check_enabled
  ok "admin's edit kept, conffile md5 of the new package recorded, state and enablement kept"

  step "remove"
  run_dpkg remove --remove relsupd
  [[ $(pkg_status) == "deinstall ok config-files $new_version" ]] ||
    fail "after remove the package is '$(pkg_status)', want config-files"
  check_files_gone "$newer"
  [[ $(md5sum <"$root/etc/relsupd/relsupd.yaml") == "$edited" ]] ||
    fail "remove changed or deleted the conffile"
  [[ -f $root/etc/relsupd/notes.txt ]] || fail "remove deleted the admin's file in /etc/relsupd"
  [[ -f $root/var/lib/relsupd/ledger.db && -d $root/var/lib/relsupd/apps/shop/releases/v1 ]] ||
    fail "remove deleted the state dir /var/lib/relsupd"
  [[ -d $root/run/relsupd ]] || fail "remove deleted /run/relsupd"
  check_groups
  [[ -L $root$wants ]] || fail "remove dropped the enablement (Debian keeps it until purge)"
  ok "config, state dir, groups and enablement kept"

  step "purge"
  run_dpkg purge --purge relsupd
  [[ $(pkg_status) == "not known" || $(pkg_status) == "unknown ok not-installed "* ]] ||
    fail "after purge the package is '$(pkg_status)'"
  [[ ! -e $root/etc/relsupd ]] || fail "purge left /etc/relsupd: $(ls -A "$root/etc/relsupd")"
  [[ ! -e $root/var/lib/relsupd ]] || fail "purge left the state dir /var/lib/relsupd"
  [[ ! -e $root/run/relsupd ]] || fail "purge left /run/relsupd"
  [[ ! -e $root$wants && ! -L $root$wants ]] || fail "purge left $wants"
  [[ ! -e $root$dsh_state ]] || fail "purge left deb-systemd-helper's state $dsh_state"
  check_groups
  ok "/etc/relsupd, /var/lib/relsupd, /run/relsupd and the enablement gone; groups kept"
}

# run_script LABEL SCRIPT ARGS...: runs a maintainer script as dpkg would
# (no DPKG_ROOT unless the caller exports it) with the stubs; its output
# in $tmp/LABEL.out, its stub calls in $STUB_LOG.
run_script() {
  local label=$1 script=$2
  shift 2
  : >"$STUB_LOG"
  local rc=0
  (cd / && DPKG_MAINTSCRIPT_NAME=$(basename "$script") "$script" "$@") \
    </dev/null >"$tmp/$label.out" 2>"$tmp/$label.err" || rc=$?
  [[ $rc == 0 ]] || fail "$label: $(basename "$script") $* exited with $rc:
$(cat "$tmp/$label.out" "$tmp/$label.err")"
}

# expect_calls LABEL: $STUB_LOG must be stdin, line for line.
expect_calls() {
  local label=$1
  if ! diff -u - "$STUB_LOG" >"$tmp/$label.diff"; then
    fail "$label: the scripts ran other commands than expected (- expected, + ran):
$(cat "$tmp/$label.diff")"
  fi
}

expect_quiet() {
  local label=$1
  [[ ! -s $tmp/$label.out && ! -s $tmp/$label.err ]] ||
    fail "$label: expected no output, got:
$(cat "$tmp/$label.out" "$tmp/$label.err")"
}

ns_scripts() {
  tmp=$1
  local deb=$2
  ns_setup "$tmp"
  export STUB_LOG=$tmp/stub.log
  local s
  for s in systemctl deb-systemd-invoke deb-systemd-helper systemd-sysusers \
    systemd-tmpfiles relsupd; do stub "$s"; done
  stub policy-rc.d /usr/sbin
  local c=$tmp/control
  dpkg-deb -e "$deb" "$c"
  unset DPKG_ROOT

  local first=(
    "systemd-sysusers relsupd.conf"
    "systemd-tmpfiles --create relsupd.conf"
    "deb-systemd-helper --quiet was-enabled $unit"
    "deb-systemd-helper enable $unit"
    "systemctl --system daemon-reload"
  )

  step "postinst configure (first install) where systemd runs"
  run_script install "$c/postinst" configure
  printf '%s\n' "${first[@]}" "deb-systemd-invoke start $unit" | expect_calls install
  expect_quiet install
  ok "groups, directories, enable, daemon-reload, start (through deb-systemd-invoke)"

  step "postinst configure after the admin disabled the unit"
  STUB_WAS_ENABLED=0 run_script disabled "$c/postinst" configure 0.1.0
  printf '%s\n' "${first[@]:0:3}" "deb-systemd-helper update-state $unit" \
    "systemctl --system daemon-reload" "systemctl --quiet is-active $unit" \
    "deb-systemd-invoke start $unit" | expect_calls disabled
  expect_quiet disabled
  ok "update-state instead of enable; start left to deb-systemd-invoke (which skips a disabled unit)"

  step "postinst upgrade with the daemon running: daemon-reexec"
  STUB_ACTIVE=1 run_script reexec "$c/postinst" configure 0.1.0
  printf '%s\n' "${first[@]}" "systemctl --quiet is-active $unit" \
    "policy-rc.d $unit restart" "relsupd ctl daemon-reexec --wait 60s" | expect_calls reexec
  grep -q '^relsupd 0.1.0 -> 0.1.1' "$tmp/reexec.out" || fail "reexec: the re-exec's result was not printed"
  [[ ! -s $tmp/reexec.err ]] || fail "reexec: unexpected stderr: $(cat "$tmp/reexec.err")"
  ok "re-exec, no restart, result printed"

  step "postinst upgrade from a daemon without daemon-reexec: try-restart"
  STUB_ACTIVE=1 STUB_REEXEC=old run_script old "$c/postinst" configure 0.0.9
  printf '%s\n' "${first[@]}" "systemctl --quiet is-active $unit" \
    "policy-rc.d $unit restart" "relsupd ctl daemon-reexec --wait 60s" \
    "deb-systemd-invoke try-restart $unit" | expect_calls old
  expect_quiet old
  ok "try-restart through deb-systemd-invoke"

  step "postinst upgrade when the daemon refuses the re-exec"
  STUB_ACTIVE=1 STUB_REEXEC=refused run_script refused "$c/postinst" configure 0.1.0
  printf '%s\n' "${first[@]}" "systemctl --quiet is-active $unit" \
    "policy-rc.d $unit restart" "relsupd ctl daemon-reexec --wait 60s" | expect_calls refused
  grep -q 'keeps running the previous version' "$tmp/refused.err" ||
    fail "refused: the postinst did not say the previous version keeps running"
  ok "no restart, exit 0, the reason and what to do on stderr"

  step "postinst upgrade with policy-rc.d forbidding restarts"
  STUB_ACTIVE=1 STUB_POLICY=101 run_script policy "$c/postinst" configure 0.1.0
  printf '%s\n' "${first[@]}" "systemctl --quiet is-active $unit" \
    "policy-rc.d $unit restart" | expect_calls policy
  grep -q 'policy-rc.d returned 101' "$tmp/policy.err" || fail "policy: no word of policy-rc.d's refusal"
  ok "no re-exec"

  step "postinst upgrade with the daemon stopped: start"
  run_script stopped "$c/postinst" configure 0.1.0
  printf '%s\n' "${first[@]}" "systemctl --quiet is-active $unit" \
    "deb-systemd-invoke start $unit" | expect_calls stopped
  expect_quiet stopped
  ok "start through deb-systemd-invoke"

  step "postinst configure with DPKG_ROOT set, systemd running here"
  DPKG_ROOT=/nonexistent-root run_script dpkgroot "$c/postinst" configure
  printf '%s\n' "systemd-sysusers --root=/nonexistent-root relsupd.conf" \
    "systemd-tmpfiles --root=/nonexistent-root --create relsupd.conf" \
    "deb-systemd-helper --quiet was-enabled $unit" "deb-systemd-helper enable $unit" |
    expect_calls dpkgroot
  expect_quiet dpkgroot
  ok "sysusers and tmpfiles on the root; no systemctl, start or re-exec"

  step "prerm remove / upgrade, postrm remove / upgrade"
  run_script prerm-remove "$c/prerm" remove
  echo "deb-systemd-invoke stop $unit" | expect_calls prerm-remove
  expect_quiet prerm-remove
  run_script prerm-upgrade "$c/prerm" upgrade 0.1.1
  expect_calls prerm-upgrade </dev/null
  expect_quiet prerm-upgrade
  DPKG_ROOT=/nonexistent-root run_script prerm-root "$c/prerm" remove
  expect_calls prerm-root </dev/null
  run_script postrm-remove "$c/postrm" remove
  echo "systemctl --system daemon-reload" | expect_calls postrm-remove
  expect_quiet postrm-remove
  run_script postrm-upgrade "$c/postrm" upgrade 0.1.1
  expect_calls postrm-upgrade </dev/null
  DPKG_ROOT=/nonexistent-root run_script postrm-root "$c/postrm" remove
  expect_calls postrm-root </dev/null
  ok "stop on remove only, through deb-systemd-invoke; daemon-reload after remove; nothing with DPKG_ROOT"
}

if [[ ${1:-} == --in-namespace ]]; then
  shift
  mode=$1
  shift
  case $mode in
  cycle) ns_cycle "$@" ;;
  scripts) ns_scripts "$@" ;;
  *) fail "unknown namespace mode $mode" ;;
  esac
  exit 0
fi

# ---------------------------------------------------------------------------
# Outside: lintian, the newer package, the host's state, the two namespaces.

(($# >= 1 && $# <= 2)) || {
  echo "usage: $0 DEB [DEB_NEWER]" >&2
  exit 2
}
deb=$(readlink -f "$1")
[[ -f $deb ]] || fail "no such package: $1"
newer=${2:+$(readlink -f "$2")}
[[ -z $newer || -f $newer ]] || fail "no such package: $2"

((EUID == 0)) || skip "needs root (dpkg --root, unshare -m)"
for tool in dpkg dpkg-deb dpkg-query lintian unshare systemd-sysusers \
  systemd-tmpfiles deb-systemd-helper md5sum; do
  command -v "$tool" >/dev/null || skip "$tool is not installed"
done
# A container without CAP_SYS_ADMIN cannot make one: skipped, not failed.
unshare --mount --propagation private true 2>/dev/null ||
  skip "cannot make a mount namespace here (unshare -m)"
[[ $(dpkg-deb -f "$deb" Package) == relsupd ]] || fail "$deb is not the relsupd package"

tmp=$(readlink -f "$(mktemp -d "${TMPDIR:-/tmp}/deb-cycle.XXXXXX")")
# The namespaces' mounts under $tmp end with them; never remove a tree
# something is still mounted in.
cleanup() {
  if grep -q " $tmp/" /proc/self/mounts; then
    echo "leaving $tmp: something is mounted below it" >&2
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
case $(readlink -f "$tmp")/ in
/etc/* | /usr/* | /var/*) fail "TMPDIR must not be under /etc, /usr or /var (the test makes them read-only): $tmp" ;;
esac

for d in "$deb" ${2:+"$newer"}; do
  step "lintian $(basename "$d")"
  lintian -I --fail-on none --show-overrides "$d" >"$tmp/lintian.out" 2>"$tmp/lintian.err" ||
    fail "lintian could not check $d: $(cat "$tmp/lintian.err")"
  sed 's/^/   | /' "$tmp/lintian.out"
  bad=$(grep -E '^[EW]: ' "$tmp/lintian.out" || true)
  [[ -z $bad ]] || fail "lintian reports errors or warnings not overridden in packaging/debian/lintian-overrides:
$bad"
  ok "no E: or W: from lintian ($(grep -c '^O: ' "$tmp/lintian.out" || true) overridden, each with its reason in the override file)"
done

if [[ -z $newer ]]; then
  step "making the upgrade: $(basename "$deb") with a higher version and a changed conffile"
  dpkg-deb -R "$deb" "$tmp/newer-tree"
  v=$(dpkg-deb -f "$deb" Version)
  sed -i "s/^Version: .*/Version: $v+cycle1/" "$tmp/newer-tree/DEBIAN/control"
  echo "# a line the next version of the package added" >>"$tmp/newer-tree/etc/relsupd/relsupd.yaml"
  (cd "$tmp/newer-tree" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
    xargs -0 md5sum >DEBIAN/md5sums)
  newer=$tmp/relsupd_${v}+cycle1.deb
  dpkg-deb -b --root-owner-group "$tmp/newer-tree" "$newer" >/dev/null
  ok "$(basename "$newer")"
fi

host_state() {
  local g p
  for g in relsupd relsupd-admin; do
    echo "group $g: $(getent group "$g" || echo absent)"
  done
  for p in /etc/relsupd /var/lib/relsupd /run/relsupd /run/systemd/system \
    /etc/systemd/system/multi-user.target.wants/$unit \
    /var/lib/systemd/deb-systemd-helper-enabled/$unit.dsh-also \
    /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/$unit \
    /usr/bin/relsupd /usr/lib/systemd/system/$unit /usr/lib/sysusers.d/relsupd.conf \
    /usr/lib/tmpfiles.d/relsupd.conf; do
    if [[ -L $p ]]; then
      echo "$p: symlink to $(readlink "$p")"
    elif [[ -e $p ]]; then
      echo "$p: $(stat -c '%F %a %U:%G' "$p")"
    else
      echo "$p: absent"
    fi
  done
  echo "dpkg: $(dpkg-query -W -f='${Status} ${Version}' relsupd 2>/dev/null || echo relsupd not known)"
  if [[ -d /run/systemd/system ]]; then
    echo "systemd: $(systemctl is-enabled $unit 2>&1 || true) $(systemctl is-active $unit 2>&1 || true)"
  fi
}
host_state >"$tmp/host.before"

check_host() {
  host_state >"$tmp/host.after"
  diff -u "$tmp/host.before" "$tmp/host.after" >"$tmp/host.diff" ||
    fail "this machine changed ($1):
$(cat "$tmp/host.diff")"
  ok "this machine unchanged: groups relsupd, relsupd-admin, /etc/relsupd, /var/lib/relsupd, /run/relsupd, unit links, package state"
}

unshare --mount --propagation private -- bash "$script_path" --in-namespace cycle "$tmp" "$deb" "$newer"
check_host "after the chrootless cycle"
unshare --mount --propagation private -- bash "$script_path" --in-namespace scripts "$tmp" "$deb"
check_host "after the stubbed-systemd script runs"

echo "PASS: $(basename "$deb") is lintian clean and installs, upgrades, removes and purges as a Debian daemon package does"

#!/usr/bin/env bash
# Drives the Ansible collection relsupd.core (packaging/ansible/) and its
# rolling-deploy playbook against three relsupd daemons on this machine.
#
#   test_ansible.sh RELSUPD
#
# RELSUPD is the built `relsupd` (its relsupd-core beside it). The script
# starts three daemons (h1, h2, h3), each with its own state dir and socket
# in a new directory under /tmp, writes an inventory of three hosts with
# `ansible_connection: local` and each socket as the host variable
# relsupd_socket, and makes the collection loadable through a
# ansible_collections/relsupd/core symlink on ANSIBLE_COLLECTIONS_PATH.
# Then, reading the outcome with `relsupd ctl --json status` and
# `releases` directly (never through the modules under test):
#
#   app      relsupd.core.app creates app shop on each host; again: changed=0
#   (a)      deploy.yml deploys v1 (an artifact whose web process sleeps)
#            to all three: active v1 on each
#   (b)      the same run again: changed=0 for every host in the PLAY RECAP,
#            and no new release anywhere
#   (c)      --check with the live config: changed=0 everywhere; with a new
#            config: changed on every host, and nothing changes (no new
#            release, v1 still live)
#   (d)      an artifact whose web process exits 1 at start (batch 1): the
#            play fails at h1 with the daemon's reason (crash-looped) in the
#            output; h1 went back to v1 by itself, h2 and h3 were never
#            reached (still their one release, v1 live)
#   (e)      an artifact that crashes only on h2 (its command exits when its
#            slot is under h2/), batch 1: h1 switches to it, h2 fails and
#            rolls itself back, the rescue puts h1 back on v1, h3 untouched
#   (e2)     the same with batch 2: h1 and h2 in one batch; h1 switched
#            beside the failing h2 and is put back too; h3 untouched
#   src      relsupd.core.release with src (a source dir built on the host)
#            finds v1 again: changed false, in check mode and not
#   scale    relsupd.core.scale and relsupd.core.facts on h1: changed
#            only when a count differs, the instances seen by ps;
#            relsupd.core.active given v1's digest: v1, live already;
#            socket and relsupd_bin from module_defaults of the action group
#   (f)      ansible-doc renders each module (DOCUMENTATION, EXAMPLES, RETURN)
#   (g)      `ansible-test sanity` with the tests that run offline (the
#            others need pip from the network), and py_compile plus a
#            yaml.safe_load of each module's DOCUMENTATION/EXAMPLES/RETURN
#
# Last, a copy of the collection broken on purpose (an active module that
# always says changed) must fail check (b), so these checks can fail.
# Then (absent) relsupd.core.app state=absent on h1, where shop runs:
# refused with the daemon's reason (and nothing deleted), also in check
# mode; in check mode
# with stop: changed, nothing deleted; with stop: shop is gone; again:
# changed=0.
# Waits are for states (the daemons' sockets answering); the modules follow
# each activation to its end. Exits 1 naming the first failed check; 0 when
# all pass. Needs ansible-core (apt-get install ansible-core); never
# touches /var/lib, /run or ~/.ansible (ANSIBLE_HOME is in the temp dir).
# The daemons are stopped by their pids on any exit; the temp dir is
# removed then, unless RELSUPD_TEST_KEEP is set (to read the logs).
set -euo pipefail

die() {
  echo "test_ansible: FAIL: $*" >&2
  exit 1
}
note() { echo "test_ansible: [${SECONDS}s] $*"; }

(($# == 1)) || die "usage: test_ansible.sh RELSUPD"
relsupd=$(realpath -e "$1") || die "no relsupd binary at '$1'"
[[ -x $relsupd ]] || die "'$relsupd' is not executable"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
collection=$(realpath -e "$here/../../packaging/ansible") ||
  die "no packaging/ansible beside tests/"
command -v ansible-playbook >/dev/null ||
  die "ansible-playbook is not installed (apt-get install ansible-core)"

tmp=$(mktemp -d /tmp/relsupd-ansible.XXXXXX)
pids=()
cleanup() {
  local pid i
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || continue
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ -n ${RELSUPD_TEST_KEEP:-} ]]; then
    echo "test_ansible: kept $tmp (RELSUPD_TEST_KEEP)" >&2
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

hosts=(h1 h2 h3)
sock() { echo "$tmp/$1/relsupd.sock"; }
ctl() {
  local h=$1
  shift
  "$relsupd" ctl --json --socket "$(sock "$h")" "$@"
}
# jq-less JSON reads: json FIELD_EXPR < DOC, FIELD_EXPR a Python expression on d.
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
active_of() { ctl "$1" status shop | json 'd["active"]'; }
nreleases_of() { ctl "$1" releases shop | json 'len(d)'; }

# --- three daemons -----------------------------------------------------------
for h in "${hosts[@]}"; do
  mkdir -p "$tmp/$h/artifacts"
  "$relsupd" daemon --state-dir "$tmp/$h/state" --socket "$(sock "$h")" \
    </dev/null >"$tmp/$h/daemon.log" 2>&1 &
  pids+=($!)
done
for i in 0 1 2; do
  h=${hosts[i]}
  for ((n = 0; n < 100; n++)); do
    kill -0 "${pids[i]}" 2>/dev/null ||
      die "daemon $h exited at start-up:$(printf '\n'; cat "$tmp/$h/daemon.log")"
    ctl "$h" info >/dev/null 2>&1 && break
    sleep 0.1
  done
  ((n < 100)) || die "daemon $h did not answer on $(sock "$h") within 10 s"
done

# --- Ansible's environment -----------------------------------------------------
mkdir -p "$tmp/collections/ansible_collections/relsupd" "$tmp/ansible-home"
ln -s "$collection" "$tmp/collections/ansible_collections/relsupd/core"
export ANSIBLE_COLLECTIONS_PATH=$tmp/collections
export ANSIBLE_HOME=$tmp/ansible-home ANSIBLE_LOCAL_TEMP=$tmp/ansible-home/tmp
export ANSIBLE_REMOTE_TEMP=$tmp/ansible-home/remote-tmp
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 ANSIBLE_RETRY_FILES_ENABLED=0
export ANSIBLE_DEPRECATION_WARNINGS=0 ANSIBLE_LOCALHOST_WARNING=0
export ANSIBLE_STDOUT_CALLBACK=default ANSIBLE_PIPELINING=1
unset ANSIBLE_CONFIG ANSIBLE_CALLBACKS_ENABLED RELSUPD_SOCKET

inventory=$tmp/inventory.yml
{
  echo "all:"
  echo "  vars:"
  echo "    ansible_connection: local"
  echo "    ansible_python_interpreter: auto_silent"
  echo "    relsupd_bin: $relsupd"
  echo "  hosts:"
  for h in "${hosts[@]}"; do
    echo "    $h:"
    echo "      relsupd_socket: $(sock "$h")"
    echo "      relsupd_artifact_dir: $tmp/$h/artifacts"
  done
} >"$inventory"

# By its name in the collection, as a user runs it (playbooks/deploy.yml).
playbook=relsupd.core.deploy
# play LOG ARGS...: ansible-playbook with the inventory, its output in LOG;
# returns its exit status.
play() {
  local log=$1
  shift
  ansible-playbook -i "$inventory" "$@" >"$log" 2>&1
}
# recap LOG HOST FIELD: FIELD's count (ok, changed, failed, ...) in the
# PLAY RECAP line of HOST.
recap() {
  local line
  line=$(grep -E "^$2 +: ok=" "$1" | tail -1) || return 1
  sed -E "s/.* $3=([0-9]+).*/\\1/" <<<"$line"
}
show() { printf '\n--- %s ---\n' "$1"; cat "$1"; }

# --- artifacts -------------------------------------------------------------------
# good: web sleeps (ready after 1 s: ready none). crash: web exits 1 at once.
# h2crash: web exits 1 where its slot lies under h2/ (host h2's state dir),
# and sleeps elsewhere: one artifact that only h2 cannot run.
mkdir -p "$tmp/src/good" "$tmp/src/crash" "$tmp/src/h2crash"
echo 'web: exec sleep 1000' >"$tmp/src/good/Procfile"
echo 'web: exit 1' >"$tmp/src/crash/Procfile"
echo 'web: case "$PWD" in */h2/*) exit 1;; esac; exec sleep 1000' >"$tmp/src/h2crash/Procfile"
for a in good crash h2crash; do
  "$relsupd" build "$tmp/src/$a" -o "$tmp/$a.tar.gz" >/dev/null 2>"$tmp/build.err" ||
    die "relsupd build $a failed: $(cat "$tmp/build.err")"
done

# --- the app, through relsupd.core.app ----------------------------------------------
cat >"$tmp/app.yml" <<'EOF'
- name: The app on every host
  hosts: all
  gather_facts: false
  tasks:
    - name: App shop
      relsupd.core.app:
        name: shop
        keep: 10
        deadline: 30s
        state: "{{ app_state | default('present') }}"
        socket: "{{ relsupd_socket }}"
        relsupd_bin: "{{ relsupd_bin }}"
EOF
play "$tmp/app1.log" "$tmp/app.yml" || die "app module: first run failed$(show "$tmp/app1.log")"
for h in "${hosts[@]}"; do
  [[ $(recap "$tmp/app1.log" "$h" changed) == 1 ]] ||
    die "app module: first run did not report changed on $h$(show "$tmp/app1.log")"
  [[ $(ctl "$h" app show shop | json 'd["activation_deadline_ms"]') == 30000 ]] ||
    die "app module: shop on $h has not the deadline 30s"
done
play "$tmp/app2.log" "$tmp/app.yml" || die "app module: second run failed$(show "$tmp/app2.log")"
for h in "${hosts[@]}"; do
  [[ $(recap "$tmp/app2.log" "$h" changed) == 0 ]] ||
    die "app module: second run changed $h$(show "$tmp/app2.log")"
done
note "app module: creates, then changed=0"

# --- (a) deploy v1 to all three ----------------------------------------------------------
deploy() { # deploy LOG ARTIFACT [ansible-playbook args...]
  local log=$1 artifact=$2
  shift 2
  play "$log" "$playbook" -e app=shop -e "artifact=$artifact" "$@"
}
deploy "$tmp/a.log" "$tmp/good.tar.gz" -e '{"config": {"GREETING": "hello"}}' ||
  die "(a) the first deploy failed$(show "$tmp/a.log")"
for h in "${hosts[@]}"; do
  [[ $(active_of "$h") == v1 ]] || die "(a) $h: active is $(active_of "$h"), not v1$(show "$tmp/a.log")"
done
note "(a) deploy.yml put v1 live on h1, h2, h3"

# --- (b) again: nothing changes -----------------------------------------------------------
# check_unchanged LOG: changed=0 and failed=0 for every host in LOG's recap.
check_unchanged() {
  local h
  for h in "${hosts[@]}"; do
    [[ $(recap "$1" "$h" changed) == 0 && $(recap "$1" "$h" failed) == 0 ]] || return 1
  done
}
deploy "$tmp/b.log" "$tmp/good.tar.gz" -e '{"config": {"GREETING": "hello"}}' ||
  die "(b) the second deploy failed$(show "$tmp/b.log")"
check_unchanged "$tmp/b.log" || die "(b) the second deploy was not changed=0 everywhere$(show "$tmp/b.log")"
for h in "${hosts[@]}"; do
  [[ $(active_of "$h") == v1 && $(nreleases_of "$h") == 1 ]] ||
    die "(b) $h: active $(active_of "$h"), $(nreleases_of "$h") releases after a run that changed nothing"
done
note "(b) the same deploy again: changed=0 on every host"
grep -E '^h[123] +: ok=' "$tmp/b.log" | sed 's/^/test_ansible:     /'

# --- (c) check mode with a new config ------------------------------------------------------
# First with the same config: check mode must find the kept release and
# report nothing to do, as the real run did.
deploy "$tmp/c0.log" "$tmp/good.tar.gz" -e '{"config": {"GREETING": "hello"}}' --check ||
  die "(c) the check-mode deploy of what is live failed$(show "$tmp/c0.log")"
check_unchanged "$tmp/c0.log" ||
  die "(c) check mode reported a change for the release already live$(show "$tmp/c0.log")"
deploy "$tmp/c.log" "$tmp/good.tar.gz" -e '{"config": {"GREETING": "bye"}}' --check ||
  die "(c) the check-mode deploy failed$(show "$tmp/c.log")"
for h in "${hosts[@]}"; do
  [[ $(recap "$tmp/c.log" "$h" changed) -ge 1 ]] ||
    die "(c) check mode did not report a change on $h$(show "$tmp/c.log")"
  [[ $(active_of "$h") == v1 && $(nreleases_of "$h") == 1 ]] ||
    die "(c) check mode changed $h: active $(active_of "$h"), $(nreleases_of "$h") releases"
done
note "(c) --check: changed=0 with the live config; with a new one changed on every host, nothing made or switched"

# --- (d) a release that crashes at start: stops at h1 ----------------------------------------
if deploy "$tmp/d.log" "$tmp/crash.tar.gz" -e batch=1; then
  die "(d) the deploy of a crashing release did not fail$(show "$tmp/d.log")"
fi
grep -q 'crash-looped' "$tmp/d.log" ||
  die "(d) the daemon's reason (crash-looped) is not in the output$(show "$tmp/d.log")"
[[ $(recap "$tmp/d.log" h1 failed) == 1 ]] || die "(d) h1 is not the failed host$(show "$tmp/d.log")"
[[ $(active_of h1) == v1 && $(nreleases_of h1) == 2 ]] ||
  die "(d) h1: active $(active_of h1) with $(nreleases_of h1) releases, not v1 live beside the failed v2"
for h in h2 h3; do
  [[ $(active_of "$h") == v1 && $(nreleases_of "$h") == 1 ]] ||
    die "(d) $h was reached: active $(active_of "$h"), $(nreleases_of "$h") releases$(show "$tmp/d.log")"
  ! grep -qE "^$h +: ok=[1-9]" "$tmp/d.log" || die "(d) $h ran tasks$(show "$tmp/d.log")"
done
note "(d) a crashing release stops at h1 (rolled back by its daemon: $(grep -o 'rolled back to v1: [^"]*crash-looped[^"(]*' "$tmp/d.log" | head -1 | sed 's/ *$//')); h2, h3 untouched"

# --- (e) the failure on the second host: the rescue puts h1 back -----------------------------
if deploy "$tmp/e.log" "$tmp/h2crash.tar.gz" -e batch=1; then
  die "(e) the deploy that crashes on h2 did not fail$(show "$tmp/e.log")"
fi
grep -q 'crash-looped' "$tmp/e.log" || die "(e) the daemon's reason is not in the output$(show "$tmp/e.log")"
[[ $(recap "$tmp/e.log" h2 failed) == 1 && $(recap "$tmp/e.log" h1 failed) == 0 ]] ||
  die "(e) h2 should be the one failed host$(show "$tmp/e.log")"
# h1 went live on the new release (v3) and was put back: v1 live, v3 before it.
h1_status=$(ctl h1 status shop)
[[ $(json 'd["active"]' <<<"$h1_status") == v1 && $(json 'd["previous"]' <<<"$h1_status") == v3 ]] ||
  die "(e) h1 should be on v1 after v3: $(json '(d["active"], d["previous"])' <<<"$h1_status")$(show "$tmp/e.log")"
[[ $(active_of h2) == v1 ]] || die "(e) h2 is on $(active_of h2), not v1"
[[ $(active_of h3) == v1 && $(nreleases_of h3) == 1 ]] ||
  die "(e) h3 was reached: active $(active_of h3), $(nreleases_of h3) releases$(show "$tmp/e.log")"
note "(e) batch 1, h2 fails: h1 switched to v3 and put back on v1 by the rescue; h3 untouched"

# --- (e2) the same with h1 and h2 in one batch ----------------------------------------------------
if deploy "$tmp/e2.log" "$tmp/h2crash.tar.gz" -e batch=2; then
  die "(e2) the deploy that crashes on h2 did not fail$(show "$tmp/e2.log")"
fi
h1_status=$(ctl h1 status shop)
[[ $(json 'd["active"]' <<<"$h1_status") == v1 && $(json 'd["previous"]' <<<"$h1_status") == v3 ]] ||
  die "(e2) h1 should be on v1 after v3 again: $(json '(d["active"], d["previous"])' <<<"$h1_status")$(show "$tmp/e2.log")"
grep -qE 'changed: \[h2 -> h1\]' "$tmp/e2.log" ||
  die "(e2) the rescue on h2 did not switch h1 back$(show "$tmp/e2.log")"
[[ $(active_of h2) == v1 && $(active_of h3) == v1 && $(nreleases_of h3) == 1 ]] ||
  die "(e2) h2 on $(active_of h2), h3 on $(active_of h3) with $(nreleases_of h3) releases$(show "$tmp/e2.log")"
note "(e2) batch 2, h2 fails beside h1: h1 put back on v1; h3 untouched"

# --- release from a source dir ---------------------------------------------------------------------
# relsupd.core.release with src: built on the host by `relsupd build`,
# which is reproducible, so the good source gives v1's build back and,
# with v1's config, v1 itself: nothing new, in check mode or not.
for mode in --check ""; do
  ansible -i "$inventory" h3 -m relsupd.core.release ${mode:+"$mode"} -a "$(printf \
    '{"app": "shop", "src": "%s", "socket": "%s", "relsupd_bin": "%s"}' \
    "$tmp/src/good" "$(sock h3)" "$relsupd")" >"$tmp/src.log" 2>&1 ||
    die "release src= ${mode:-(real run)} failed$(show "$tmp/src.log")"
  grep -qE '^h3 \| SUCCESS' "$tmp/src.log" && grep -q '"release": "v1"' "$tmp/src.log" ||
    die "release src= ${mode:-(real run)} did not find v1 unchanged$(show "$tmp/src.log")"
done
[[ $(nreleases_of h3) == 1 ]] || die "release src= made a release on h3"
note "release src=DIR: built on the host, v1 found again (check mode and real run)"

# --- scale and facts ------------------------------------------------------------------------------
cat >"$tmp/scale.yml" <<'EOF'
- name: Scale and facts on one host
  hosts: h1
  gather_facts: false
  # The collection's action group (meta/runtime.yml) sets both for each module.
  module_defaults:
    group/relsupd.core.relsupd:
      socket: "{{ relsupd_socket }}"
      relsupd_bin: "{{ relsupd_bin }}"
  tasks:
    - name: Scale web
      relsupd.core.scale:
        app: shop
        formation: {web: "{{ web }}"}
    - name: Facts
      relsupd.core.facts:
        app: shop
    - name: The live release named by a digest prefix is live already
      relsupd.core.active:
        app: shop
        release: "{{ (ansible_facts.relsupd.apps.shop.releases | selectattr('release', 'equalto', 'v1') | first).digest[:16] }}"
      register: by_digest
      failed_when: by_digest is failed or by_digest is changed or by_digest.release != 'v1'
    - name: The facts say what ps says
      ansible.builtin.assert:
        that:
          - ansible_facts.relsupd.apps.shop.active == 'v1'
          - ansible_facts.relsupd.apps.shop.releases | length == 3
          - ansible_facts.relsupd.apps.shop.settings.activation_deadline_ms == 30000
          - (ansible_facts.relsupd.apps.shop.instances | selectattr('type', 'equalto', 'web') | list | length) == web | int
      when: not ansible_check_mode
EOF
play "$tmp/s1.log" "$tmp/scale.yml" -e web=2 --check || die "scale: check mode failed$(show "$tmp/s1.log")"
[[ $(recap "$tmp/s1.log" h1 changed) == 1 ]] || die "scale: check mode did not report the change$(show "$tmp/s1.log")"
[[ $(ctl h1 ps shop | json 'len(d)') == 1 ]] || die "scale: check mode changed the instances"
play "$tmp/s1.log" "$tmp/scale.yml" -e web=1 || die "scale: web=1 (as it is) failed$(show "$tmp/s1.log")"
[[ $(recap "$tmp/s1.log" h1 changed) == 0 ]] || die "scale: web=1 as it is reported a change$(show "$tmp/s1.log")"
play "$tmp/s2.log" "$tmp/scale.yml" -e web=2 || die "scale: web=2 failed$(show "$tmp/s2.log")"
[[ $(recap "$tmp/s2.log" h1 changed) == 1 ]] || die "scale: web=2 did not report changed$(show "$tmp/s2.log")"
[[ $(ctl h1 ps shop | json 'len([p for p in d if p["type"] == "web"])') == 2 ]] ||
  die "scale: h1 does not run 2 web instances"
play "$tmp/s3.log" "$tmp/scale.yml" -e web=2 || die "scale: web=2 again failed$(show "$tmp/s3.log")"
[[ $(recap "$tmp/s3.log" h1 changed) == 0 ]] || die "scale: web=2 again reported a change$(show "$tmp/s3.log")"
note "scale and facts: changed only when a count differs; facts match ps"
# A type that binds its PORT itself, scaled past 1: the daemon's warning
# becomes the task's. App `ported` on h1: the good artifact with PORT set
# (its web sleeps, so nothing binds and nothing crashes).
cat >"$tmp/scale_port.yml" <<'EOF'
- name: Scale a type that binds PORT itself
  hosts: h1
  gather_facts: false
  tasks:
    - name: Scale web of ported
      relsupd.core.scale:
        app: ported
        formation: {web: 2}
        socket: "{{ relsupd_socket }}"
        relsupd_bin: "{{ relsupd_bin }}"
EOF
ctl h1 app create ported >/dev/null || die "scale: app create ported failed"
ported_build=$(ctl h1 build import ported "$tmp/good.tar.gz" | json 'd["id"]') ||
  die "scale: build import for ported failed"
ctl h1 release create ported --build "$ported_build" --set PORT=9 >/dev/null ||
  die "scale: release create for ported failed"
ctl h1 activate ported v1 >/dev/null || die "scale: activate ported v1 failed"
play "$tmp/s4.log" "$tmp/scale_port.yml" || die "scale: ported web=2 failed$(show "$tmp/s4.log")"
[[ $(recap "$tmp/s4.log" h1 changed) == 1 ]] ||
  die "scale: ported web=2 did not report changed$(show "$tmp/s4.log")"
grep -q "WARNING.*process type 'web' has PORT=9 and no daemon-held socket" "$tmp/s4.log" ||
  die "scale: no warning for ported's PORT$(show "$tmp/s4.log")"
ctl h1 app delete ported --stop >/dev/null || die "scale: app delete ported failed"
note "scale: a type that binds PORT itself, scaled to 2, warns"

# --- (f) ansible-doc renders each module -----------------------------------------------------------
modules=(app release active scale facts)
for m in "${modules[@]}"; do
  ansible-doc "relsupd.core.$m" >"$tmp/doc-$m.txt" 2>&1 ||
    die "(f) ansible-doc relsupd.core.$m failed$(show "$tmp/doc-$m.txt")"
  for want in "RELSUPD.CORE.${m^^}" OPTIONS EXAMPLES "RETURN VALUES"; do
    grep -q "$want" "$tmp/doc-$m.txt" || die "(f) ansible-doc relsupd.core.$m has no $want$(show "$tmp/doc-$m.txt")"
  done
  grep -q 'socket' "$tmp/doc-$m.txt" || die "(f) relsupd.core.$m documents no socket option"
done
note "(f) ansible-doc renders ${modules[*]}"

# --- (g) sanity ------------------------------------------------------------------------------------------
for m in "${modules[@]}"; do
  python3 - "$collection/plugins/modules/$m.py" "$tmp/$m.pyc" <<'EOF' || die "(g) $m.py: compile or documentation load failed"
import ast, py_compile, sys, yaml
path = sys.argv[1]
py_compile.compile(path, cfile=sys.argv[2], doraise=True)
blocks = {}
for node in ast.parse(open(path).read()).body:
    if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') in (
            'DOCUMENTATION', 'EXAMPLES', 'RETURN'):
        blocks[node.targets[0].id] = yaml.safe_load(node.value.value)
missing = {'DOCUMENTATION', 'EXAMPLES', 'RETURN'} - set(blocks)
if missing:
    sys.exit('%s: no %s' % (path, ', '.join(sorted(missing))))
doc = blocks['DOCUMENTATION']
for key in ('module', 'short_description', 'description', 'options'):
    if key not in doc:
        sys.exit('%s: DOCUMENTATION has no %s' % (path, key))
EOF
done
python3 -c 'import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)' \
  "$collection/plugins/module_utils/relsupd.py" "$tmp/relsupd.pyc" ||
  die "(g) module_utils/relsupd.py does not compile"
# ansible-test wants the collection at .../ansible_collections/NS/NAME and
# writes tests/output inside it: a copy. Only tests without requirements
# run offline (the others install pip into a venv from the network). Its
# venvs go under HOME/.ansible/test: a HOME in the temp dir.
mkdir -p "$tmp/sanity/ansible_collections/relsupd" "$tmp/home"
cp -r "$collection" "$tmp/sanity/ansible_collections/relsupd/core"
rm -rf "$tmp/sanity/ansible_collections/relsupd/core/tests/output"
pyver=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
offline_tests=(compile empty-init future-import-boilerplate line-endings metaclass-boilerplate
  no-assert no-basestring no-dict-iteritems no-dict-iterkeys no-dict-itervalues
  no-get-exception no-illegal-filenames no-main-display no-smart-quotes
  no-unicode-literals replace-urlopen shebang symlinks use-argspec-type-path use-compat-six)
if command -v ansible-test >/dev/null; then
  (cd "$tmp/sanity/ansible_collections/relsupd/core" &&
    HOME=$tmp/home ansible-test sanity --python "$pyver" "${offline_tests[@]/#/--test=}") >"$tmp/sanity.log" 2>&1 ||
    die "(g) ansible-test sanity failed$(show "$tmp/sanity.log")"
  note "(g) ansible-test sanity (${#offline_tests[@]} offline tests), py_compile and documentation load pass"
else
  note "(g) py_compile and documentation load pass (no ansible-test)"
fi

# --- the checks can fail ---------------------------------------------------------------------------
# A copy of the collection whose active module always reports changed must
# fail check (b).
mkdir -p "$tmp/broken/ansible_collections/relsupd"
cp -r "$collection" "$tmp/broken/ansible_collections/relsupd/core"
broken=$tmp/broken/ansible_collections/relsupd/core/plugins/modules/active.py
sed -i "s/changed=bool(outcome.get('changed', previous != release))/changed=True/" "$broken"
cmp -s "$collection/plugins/modules/active.py" "$broken" &&
  die "could not break a copy of active.py (its exit_json moved?)"
ANSIBLE_COLLECTIONS_PATH=$tmp/broken deploy "$tmp/broken.log" "$tmp/good.tar.gz" \
  -e '{"config": {"GREETING": "hello"}}' || die "the broken copy's deploy failed$(show "$tmp/broken.log")"
if check_unchanged "$tmp/broken.log"; then
  die "check (b) passed with an active module that always says changed$(show "$tmp/broken.log")"
fi
note "a copy of the collection broken on purpose fails check (b)"

# --- state=absent ------------------------------------------------------------------------------
cat >"$tmp/absent.yml" <<'EOF'
- name: Shop gone from one host
  hosts: h1
  gather_facts: false
  tasks:
    - name: App shop absent
      relsupd.core.app:
        name: shop
        state: absent
        stop: "{{ stop | default(false) | bool }}"
        socket: "{{ relsupd_socket }}"
        relsupd_bin: "{{ relsupd_bin }}"
EOF
if play "$tmp/x1.log" "$tmp/absent.yml"; then
  die "absent: a running app was deleted without stop$(show "$tmp/x1.log")"
fi
grep -q "process(es) running" "$tmp/x1.log" ||
  die "absent: the refusal does not give the daemon's reason$(show "$tmp/x1.log")"
ctl h1 app show shop >/dev/null || die "absent: the refused delete removed shop"
if play "$tmp/x1c.log" "$tmp/absent.yml" --check; then
  die "absent: check mode without stop passed where the delete is refused$(show "$tmp/x1c.log")"
fi
grep -q "process(es) running" "$tmp/x1c.log" ||
  die "absent: check mode does not give the daemon's reason$(show "$tmp/x1c.log")"
play "$tmp/x2.log" "$tmp/absent.yml" -e stop=true --check || die "absent: check mode failed$(show "$tmp/x2.log")"
[[ $(recap "$tmp/x2.log" h1 changed) == 1 ]] || die "absent: check mode did not report the change$(show "$tmp/x2.log")"
[[ $(ctl h1 ps shop | json 'len(d)') -ge 1 ]] || die "absent: check mode stopped shop"
play "$tmp/x3.log" "$tmp/absent.yml" -e stop=true || die "absent: stop=true failed$(show "$tmp/x3.log")"
[[ $(recap "$tmp/x3.log" h1 changed) == 1 ]] || die "absent: the delete did not report changed$(show "$tmp/x3.log")"
if ctl h1 app show shop >/dev/null 2>&1; then die "absent: shop still exists on h1"; fi
[[ ! -e $tmp/h1/state/apps/shop ]] || die "absent: h1's apps/shop is still there"
[[ $(ctl h1 history shop | json 'd[-1]["kind"]') == app-deleted ]] ||
  die "absent: h1's history of shop does not end with app-deleted"
ctl h2 app show shop >/dev/null || die "absent: shop is gone from h2 too"
play "$tmp/x4.log" "$tmp/absent.yml" || die "absent: the second run failed$(show "$tmp/x4.log")"
[[ $(recap "$tmp/x4.log" h1 changed) == 0 ]] || die "absent: the second run reported a change$(show "$tmp/x4.log")"
note "state=absent: a running app refused with the daemon's reason; check mode changes nothing; stop=true deletes it; again changed=0"

note "all checks passed"

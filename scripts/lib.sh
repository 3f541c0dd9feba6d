# shellcheck shell=bash
# Shared by scripts/run and scripts/test: the Debian packages relsupd needs
# to build and test, and the functions that install them and build a tree.
# Source it from the repository root.

# Build tools, libraries, test framework, and the tools the packaging tests
# run (systemd-analyze, systemd-sysusers/-tmpfiles, dpkg-shlibdeps, runuser,
# setpriv), clang with libFuzzer for the fuzz targets (tests/fuzz/), and the
# runtimes of the isolation tests' apps (python3, nodejs, gunicorn:
# tests/run/test_isolation.cc), and the reference Prometheus text parser
# (python3-prometheus-client: tests/run/test_operate.cc), and scdoc and
# groff for the man pages (packaging/man/, tests/packaging/check_man.py),
# and lintian for the Debian package's test (tests/packaging/test_deb_cycle.sh,
# which also runs dpkg, unshare and init-system-helpers' deb-systemd-helper,
# all already here),
# and zsh and bash-completion, the shells the completion test drives
# (packaging/completion/, tests/packaging/test_completion.sh).
RELSUPD_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libuv1-dev libyaml-cpp-dev libsqlite3-dev libspdlog-dev libsystemd-dev
  catch2 nlohmann-json3-dev libcli11-dev libarchive-dev nettle-dev libre2-dev
  systemd dpkg-dev util-linux
  clang libfuzzer-14-dev
  python3 nodejs gunicorn python3-prometheus-client
  scdoc groff-base
  lintian
  zsh bash-completion
  ansible-core
)

# Installs whichever of RELSUPD_PACKAGES are missing with apt-get, running
# `apt-get update` first only when something is missing. Needs root (or sudo)
# only then.
relsupd_install_packages() {
  if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "relsupd: dpkg-query not found; these scripts need Debian or Ubuntu" >&2
    return 1
  fi
  local missing=() pkg status
  for pkg in "${RELSUPD_PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  local as_root=()
  if ((EUID != 0)); then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "relsupd: missing packages, and not root to install them: ${missing[*]}" >&2
      return 1
    fi
    as_root=(sudo)
  fi
  echo "relsupd: installing ${missing[*]}" >&2
  "${as_root[@]}" apt-get update -q
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# relsupd_configure DIR [CMAKE_ARGS...]: configures DIR (Ninja, tests on).
# A DIR configured before keeps its generator.
relsupd_configure() {
  local dir=$1
  shift
  local generator=(-G Ninja)
  [[ -f $dir/CMakeCache.txt ]] && generator=()
  cmake -S . -B "$dir" "${generator[@]}" -DRELSUPD_TESTS=ON "$@"
}

# relsupd_build DIR [CMAKE_ARGS...]: configures DIR and builds everything.
relsupd_build() {
  local dir=$1
  # Explicit returns: callers may test this function in an `if`, where
  # bash ignores set -e.
  relsupd_configure "$@" || return
  cmake --build "$dir" || return
}

# Install rules and the Debian package (CPack DEB) for relsupd.
#
# Included from the top-level CMakeLists.txt after install(TARGETS relsupd),
# with CMAKE_INSTALL_PREFIX=/usr. `cpack -G DEB` in the build directory
# writes relsupd_VERSION_ARCH.deb.
#
# Layout of the package:
#   /usr/bin/relsupd
#   /usr/lib/systemd/system/relsupd.service
#   /usr/lib/sysusers.d/relsupd.conf        groups relsupd, relsupd-admin
#   /usr/lib/tmpfiles.d/relsupd.conf        /run/relsupd, /var/lib/relsupd
#   /etc/relsupd/relsupd.yaml               conffile
#   /usr/share/doc/relsupd/                 README.md, examples/, copyright,
#                                           changelog.gz
#   /usr/share/lintian/overrides/relsupd    the lintian tags left, each justified
#   /usr/share/man/man{1,5,8}/              relsupd(8), relsupd-ctl(1),
#                                           relsupd-build(1), relsupd.yaml(5),
#                                           relsupd-app(5)
#   /usr/share/bash-completion/completions/relsupd
#   /usr/share/zsh/vendor-completions/_relsupd

set(RELSUPD_PKG_SRC ${PROJECT_SOURCE_DIR})

# Paths below are relative to CMAKE_INSTALL_PREFIX (/usr), except the config,
# which belongs in /etc whatever the prefix.
install(FILES ${RELSUPD_PKG_SRC}/units/relsupd.service
        DESTINATION lib/systemd/system)
install(FILES ${RELSUPD_PKG_SRC}/units/relsupd.sysusers
        DESTINATION lib/sysusers.d RENAME relsupd.conf)
install(FILES ${RELSUPD_PKG_SRC}/units/relsupd.tmpfiles
        DESTINATION lib/tmpfiles.d RENAME relsupd.conf)
install(FILES ${RELSUPD_PKG_SRC}/config/relsupd.yaml
        DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/relsupd)
install(DIRECTORY ${RELSUPD_PKG_SRC}/config/examples/
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(FILES ${RELSUPD_PKG_SRC}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
# Debian policy 12.5: every package has /usr/share/doc/PACKAGE/copyright.
install(FILES ${RELSUPD_PKG_SRC}/packaging/debian/copyright DESTINATION ${CMAKE_INSTALL_DOCDIR})
# lintian reads a package's overrides from here (packaging/debian/lintian-overrides
# says why each tag is left).
install(FILES ${RELSUPD_PKG_SRC}/packaging/debian/lintian-overrides
        DESTINATION ${CMAKE_INSTALL_DATADIR}/lintian/overrides RENAME relsupd)

# The time written into generated files (man page footers, the changelog's
# date): SOURCE_DATE_EPOCH from the environment, else the last commit's
# time, so that a rebuild gives the same bytes.
set(relsupd_source_epoch "$ENV{SOURCE_DATE_EPOCH}")
if(NOT relsupd_source_epoch)
  execute_process(COMMAND git -C ${RELSUPD_PKG_SRC} log -1 --format=%ct
                  OUTPUT_VARIABLE relsupd_source_epoch OUTPUT_STRIP_TRAILING_WHITESPACE
                  ERROR_QUIET)
endif()
if(NOT relsupd_source_epoch)
  set(relsupd_source_epoch 0)
endif()

# /usr/share/doc/relsupd/changelog.gz (Debian policy 12.7): a package whose
# version has no Debian revision (0.1.0, not 0.1.0-1) is native, and its
# changelog is changelog.gz, in the Debian changelog format. One entry for
# the version being built; the history is the git log. gzip -9n as lintian
# asks (no name or time in the gzip header).
execute_process(COMMAND date -u -R -d @${relsupd_source_epoch}
                OUTPUT_VARIABLE RELSUPD_DEB_DATE OUTPUT_STRIP_TRAILING_WHITESPACE
                COMMAND_ERROR_IS_FATAL ANY)
set(RELSUPD_DEB_VERSION ${PROJECT_VERSION})
set(RELSUPD_DEB_MAINTAINER "relsupd maintainers <maintainers@users.noreply.r-seed-e5366297.example>")
configure_file(${RELSUPD_PKG_SRC}/packaging/debian/changelog.in
               ${PROJECT_BINARY_DIR}/packaging/changelog @ONLY)
add_custom_command(
  OUTPUT ${PROJECT_BINARY_DIR}/packaging/changelog.gz
  COMMAND sh -c "gzip -9n < '${PROJECT_BINARY_DIR}/packaging/changelog' > '${PROJECT_BINARY_DIR}/packaging/changelog.gz'"
  DEPENDS ${PROJECT_BINARY_DIR}/packaging/changelog
  COMMENT "Compressing the Debian changelog"
  VERBATIM)
add_custom_target(deb_changelog ALL DEPENDS ${PROJECT_BINARY_DIR}/packaging/changelog.gz)
install(FILES ${PROJECT_BINARY_DIR}/packaging/changelog.gz DESTINATION ${CMAKE_INSTALL_DOCDIR})

# Shell completion (packaging/completion/): bash-completion loads
# completions/relsupd (the command's name, no suffix) on first use; zsh's
# compinit finds _relsupd in vendor-completions, which runs the bash one.
# tests/packaging/test_completion.sh drives both.
install(FILES ${RELSUPD_PKG_SRC}/packaging/completion/relsupd.bash
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME relsupd)
install(FILES ${RELSUPD_PKG_SRC}/packaging/completion/_relsupd
        DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)

# Man pages: scdoc sources (packaging/man/NAME.SECTION.scd) rendered at build
# time and installed gzipped (gzip -9n, Debian policy 12.1). The date in
# each page's footer is SOURCE_DATE_EPOCH's: from the environment, else the
# last commit's time, so that a rebuild gives the same bytes.
# tests/packaging/check_man.py renders them again and checks them against
# every --help.
find_program(RELSUPD_SCDOC scdoc)
if(RELSUPD_SCDOC)
  set(relsupd_man_epoch ${relsupd_source_epoch})
  file(GLOB relsupd_man_sources CONFIGURE_DEPENDS ${RELSUPD_PKG_SRC}/packaging/man/*.scd)
  set(relsupd_man_pages)
  foreach(src ${relsupd_man_sources})
    get_filename_component(page ${src} NAME_WLE)  # relsupd-ctl.1
    string(REGEX MATCH "[0-9]$" section ${page})
    set(roff ${PROJECT_BINARY_DIR}/man/${page})
    set(out ${roff}.gz)
    add_custom_command(
      OUTPUT ${out} ${roff}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man
      COMMAND sh -c "SOURCE_DATE_EPOCH=${relsupd_man_epoch} '${RELSUPD_SCDOC}' < '${src}' > '${roff}' && gzip -9n < '${roff}' > '${out}'"
      DEPENDS ${src}
      COMMENT "Rendering man page ${page}"
      VERBATIM)
    list(APPEND relsupd_man_pages ${out})
    install(FILES ${out} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  endforeach()
  add_custom_target(man ALL DEPENDS ${relsupd_man_pages})
else()
  message(WARNING "scdoc not found: the man pages are not built (apt-get install scdoc)")
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME relsupd)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
# A real address (lintian: bogus-mail-host for @localhost): the one the
# source tree's commits carry.
set(CPACK_PACKAGE_CONTACT
    "relsupd maintainers <maintainers@users.noreply.r-seed-e5366297.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "on-host release supervisor daemon")
set(CPACK_PACKAGE_DESCRIPTION
    "relsupd keeps every release of every app on a server, runs the processes\n\
of each app's active release, restarts them when they crash and switches\n\
releases atomically, with rollback one command away (the 12-factor build,\n\
release, run split). One executable: relsupd daemon, ctl and build.")
# Stripped binaries (lintian: unstripped-binary-or-object otherwise), and no
# -dbgsym package: CPack's (CPACK_DEBIAN_DEBUGINFO_PACKAGE) cannot be had
# with CPACK_STRIP_FILES, writes a .ddeb that apt repositories built by
# hand rarely carry, and the symbols of a given package are in the
# RelWithDebInfo tree it was packed from (cpack strips only its staging
# copy). A crash on a host is read with that tree's relsupd-core.
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_NAME relsupd)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS systemd)

# What the maintainer scripts run (packaging/debian/postinst): systemd-sysusers,
# as dh_installsysusers depends on it (systemd, or the standalone one in a
# container without systemd); deb-systemd-helper and deb-systemd-invoke from
# init-system-helpers, essential, but only 1.63 on honour DPKG_ROOT (Debian
# 12 has 1.65). systemd-tmpfiles is used when present, as
# dh_installtmpfiles does (the unit creates the same directories).
set(relsupd_script_depends
    "systemd | systemd-standalone-sysusers | systemd-sysusers, init-system-helpers (>= 1.63~)")
# Library dependencies come from dpkg-shlibdeps (package dpkg-dev) when it is
# there, appended by CPack to CPACK_DEBIAN_PACKAGE_DEPENDS; otherwise from
# this list, which must follow what relsupd links.
find_program(RELSUPD_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(RELSUPD_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "${relsupd_script_depends}")
else()
  message(STATUS "dpkg-shlibdeps not found: the .deb gets a fixed Depends list")
  set(CPACK_DEBIAN_PACKAGE_DEPENDS
      "${relsupd_script_depends}, libc6, libstdc++6, libgcc-s1, libuv1, libyaml-cpp0.7, libsqlite3-0, libspdlog1.10-fmt9, libfmt9, libsystemd0, libnettle8, libarchive13, libre2-9")
endif()

# conffiles marks /etc/relsupd/relsupd.yaml so upgrades keep local edits.
# The maintainer scripts do what debhelper's dh_installsysusers,
# dh_installtmpfiles and dh_installsystemd would: groups, directories,
# enable and start the unit (where systemd runs), re-exec the daemon on
# upgrade, stop it on remove, and on purge remove /etc/relsupd and the state
# dir. CPack writes md5sums itself. tests/packaging/test_deb_cycle.sh
# checks all of it, and lintian.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${RELSUPD_PKG_SRC}/packaging/debian/conffiles
    ${RELSUPD_PKG_SRC}/packaging/debian/postinst
    ${RELSUPD_PKG_SRC}/packaging/debian/prerm
    ${RELSUPD_PKG_SRC}/packaging/debian/postrm)
# Maintainer scripts 0755, conffiles 0644, whatever the checkout's modes.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

include(CPack)

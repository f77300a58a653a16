# Debian packages built with CPack (scripts/package.sh, test DebianPackage):
#
#   lithos          the programs, lithos_mkdev, the systemd unit, man pages,
#                   docs (install component Unspecified) and the Debian files
#                   below (component deb_main): /etc/lithos/master.yaml as a
#                   conffile (packaging/debian/), empty /etc/lithos/sandboxes
#                   and processes, copyright, changelog.gz, postinst,
#                   lintian overrides
#   lithos-dbgsym   the programs' debug symbols (.ddeb, /usr/lib/debug/.build-id)
#   lithos-dev      headers, static libraries, CMake package, pkg-config file
#                   (component dev, cmake/install.cmake) and its copyright
#                   and changelog (component deb_dev)
#
# Included at the end of the root CMakeLists.txt, after every install rule.
# Installed below /usr whatever CMAKE_INSTALL_PREFIX the build has: CPack
# installs with DESTDIR set to its staging directory and CMAKE_INSTALL_PREFIX
# set to /usr, so what is configured at install time (the unit below,
# lithos-policy.pc in cmake/install.cmake) names /usr.
#
# Upgrades and removal never touch a host's configs or state: the master
# config is a conffile (kept, or asked about, on upgrade; kept on removal,
# deleted only by purge); the package owns nothing under /var/lib/lithos,
# /var/log/lithos or /run/lithos (images, devfs-dir, logs, state); there is
# no prerm or postrm, so removing or upgrading the package stops nothing
# (the unit is not enabled or started by the package either).

# --- The systemd unit names the install prefix of the install --------------
# tools/CMakeLists.txt configures the unit at configure time with
# CMAKE_INSTALL_FULL_BINDIR (the build's prefix, /usr/local by default) and
# installs that copy. The package installs to /usr: configure the installed
# copy again at install time from the prefix in effect then, the way
# cmake/install.cmake does lithos-policy.pc. This also makes
# `cmake --install BUILD --prefix P` install a unit that names P/bin.
# Runs after the unit's own install rule (CMP0082: install rules run in the
# order they were declared across directories).
foreach(kind BINDIR DOCDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${kind}}")
    set(LITHOS_UNIT_${kind} "${CMAKE_INSTALL_${kind}}")
  else()
    set(LITHOS_UNIT_${kind} "\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_${kind}}")
  endif()
endforeach()
install(CODE "
  set(LITHOS_BINDIR \"${LITHOS_UNIT_BINDIR}\")
  set(LITHOS_DOCDIR \"${LITHOS_UNIT_DOCDIR}\")
  configure_file(\"${PROJECT_SOURCE_DIR}/packaging/lithos.service.in\"
                 \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/systemd/system/lithos.service\" @ONLY)
")

# --- Files only the packages have (EXCLUDE_FROM_ALL: not in `cmake --install`)
set(LITHOS_DEB_DIR ${PROJECT_BINARY_DIR}/packaging/debian)
# A placeholder (RFC 2606 .invalid); lintian rejects localhost and
# localhost.localdomain (bogus-mail-host). Packagers set their own.
set(LITHOS_DEB_MAINTAINER "lithos developers <lithos@lithos.invalid>" CACHE STRING
    "Maintainer field of the Debian packages and their changelog")
# debian/copyright in the machine-readable format, from LICENSE (MIT is
# called Expat there): the license text indented by one space, blank lines
# as " .".
file(STRINGS ${PROJECT_SOURCE_DIR}/LICENSE _lithos_license)
set(_lithos_copyright_holder "")
set(_lithos_license_text "")
foreach(line IN LISTS _lithos_license)
  if(line MATCHES "^Copyright \\(c\\) (.*)$")
    set(_lithos_copyright_holder "${CMAKE_MATCH_1}")
    continue()  # in the Copyright field
  elseif(line STREQUAL "MIT License")
    continue()
  endif()
  if(line STREQUAL "")
    string(APPEND _lithos_license_text " .\n")
  else()
    string(APPEND _lithos_license_text " ${line}\n")
  endif()
endforeach()
string(REGEX REPLACE "^( \\.\n)+" "" _lithos_license_text "${_lithos_license_text}")
if(NOT _lithos_copyright_holder)
  message(FATAL_ERROR "package.cmake: no \"Copyright (c) ...\" line in LICENSE")
endif()
file(WRITE ${LITHOS_DEB_DIR}/copyright.in
"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: lithos
Upstream-Contact: ${LITHOS_DEB_MAINTAINER}

Files: *
Copyright: ${_lithos_copyright_holder}
License: Expat
${_lithos_license_text}")
configure_file(${LITHOS_DEB_DIR}/copyright.in ${LITHOS_DEB_DIR}/copyright COPYONLY)

# changelog.gz (a native package: version without a Debian revision) in
# Debian's changelog format, one entry for PROJECT_VERSION; the release notes
# are CHANGELOG.md. The date: SOURCE_DATE_EPOCH if set, else the last
# commit's, else now (the same bytes on every configure of a checkout);
# gzip -9n: no name or time stamp in the header (lintian).
if(NOT DEFINED ENV{SOURCE_DATE_EPOCH})
  find_program(GIT_EXECUTABLE git)
  if(GIT_EXECUTABLE)
    execute_process(COMMAND ${GIT_EXECUTABLE} -C ${PROJECT_SOURCE_DIR} log -1 --format=%ct
                    OUTPUT_VARIABLE _lithos_commit_time OUTPUT_STRIP_TRAILING_WHITESPACE
                    ERROR_QUIET RESULT_VARIABLE _lithos_git_status)
  endif()
  if(_lithos_git_status EQUAL 0 AND _lithos_commit_time MATCHES "^[0-9]+$")
    set(ENV{SOURCE_DATE_EPOCH} ${_lithos_commit_time})
    string(TIMESTAMP _lithos_deb_date "%a, %d %b %Y %H:%M:%S +0000" UTC)
    unset(ENV{SOURCE_DATE_EPOCH})
  endif()
endif()
if(NOT _lithos_deb_date)
  string(TIMESTAMP _lithos_deb_date "%a, %d %b %Y %H:%M:%S +0000" UTC)
endif()
file(WRITE ${LITHOS_DEB_DIR}/changelog.in
"lithos (${PROJECT_VERSION}) unstable; urgency=medium

  * Release ${PROJECT_VERSION}. The changes are listed in the project's
    CHANGELOG.md.

 -- ${LITHOS_DEB_MAINTAINER}  ${_lithos_deb_date}
")
configure_file(${LITHOS_DEB_DIR}/changelog.in ${LITHOS_DEB_DIR}/changelog COPYONLY)
find_program(GZIP_EXECUTABLE gzip REQUIRED)
if(${LITHOS_DEB_DIR}/changelog IS_NEWER_THAN ${LITHOS_DEB_DIR}/changelog.gz)
  execute_process(COMMAND ${GZIP_EXECUTABLE} -9nc INPUT_FILE ${LITHOS_DEB_DIR}/changelog
                  OUTPUT_FILE ${LITHOS_DEB_DIR}/changelog.gz COMMAND_ERROR_IS_FATAL ANY)
endif()

# Package lithos: the conffile at its absolute place, the doc files, the
# lintian overrides (each explained in packaging/debian/lintian-overrides).
install(FILES ${PROJECT_SOURCE_DIR}/packaging/debian/master.yaml DESTINATION /etc/lithos
        COMPONENT deb_main EXCLUDE_FROM_ALL)
# The directories master.yaml names, empty: with them the shipped config
# passes `lithos_check --offline` (test DebianPackage). dpkg removes them on
# removal only when empty: the host's sandbox and process configs stay.
foreach(dir sandboxes processes)
  install(DIRECTORY DESTINATION /etc/lithos/${dir} COMPONENT deb_main EXCLUDE_FROM_ALL)
endforeach()
install(FILES ${LITHOS_DEB_DIR}/copyright ${LITHOS_DEB_DIR}/changelog.gz
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/lithos COMPONENT deb_main EXCLUDE_FROM_ALL)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/debian/lintian-overrides
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/lintian/overrides RENAME lithos
        COMPONENT deb_main EXCLUDE_FROM_ALL)
# Package lithos-dev: its own doc directory (it does not depend on lithos).
install(FILES ${LITHOS_DEB_DIR}/copyright ${LITHOS_DEB_DIR}/changelog.gz
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/lithos-dev COMPONENT deb_dev EXCLUDE_FROM_ALL)

# --- CPack ---------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME lithos)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})  # the one version: project() in CMakeLists.txt
set(CPACK_PACKAGE_VENDOR "lithos developers")
set(CPACK_PACKAGE_CONTACT "${LITHOS_DEB_MAINTAINER}")
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/packages)  # scripts/package.sh -B overrides it
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
# Staged with DESTDIR and CMAKE_INSTALL_PREFIX=/usr (see the top): absolute
# destinations (/etc/lithos) land in the package, configure-at-install files
# name /usr.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# Not CPACK_STRIP_FILES: it strips at install time, before CPackDeb looks for
# unstripped ELF files to split into the -dbgsym package, which then would be
# empty (not built). CPackDeb strips what it splits (objcopy --only-keep-debug,
# then --strip-unneeded and a .gnu_debuglink), so the shipped binaries are
# stripped either way.
set(CPACK_STRIP_FILES OFF)
# Before packaging (cmake/package_pre_build.cmake): .comment out of the
# programs and their debug sections compressed, as dh_strip does
# (lithos-dbgsym installs 65 MB instead of 200); the static libraries of
# lithos-dev stripped of debug info (strip --strip-debug, as dh_strip).
# After (cmake/package_post_build.cmake): the -dbgsym .ddeb's md5sums and doc
# directory repaired (CPackDeb 3.25 gets them wrong with components).
set(CPACK_PRE_BUILD_SCRIPTS ${PROJECT_SOURCE_DIR}/cmake/package_pre_build.cmake)
set(CPACK_POST_BUILD_SCRIPTS ${PROJECT_SOURCE_DIR}/cmake/package_post_build.cmake)
set(CPACK_LITHOS_OBJCOPY ${CMAKE_OBJCOPY})
set(CPACK_LITHOS_STRIP ${CMAKE_STRIP})
# gzip: xz takes minutes on the 200 MB of debug info (one thread).
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)
set(CPACK_LITHOS_DPKG_COMPRESSION gzip)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL Unspecified deb_main dev deb_dev)
set(CPACK_COMPONENTS_GROUPING ONE_PER_GROUP)
set(CPACK_COMPONENT_UNSPECIFIED_GROUP main)
set(CPACK_COMPONENT_DEB_MAIN_GROUP main)
set(CPACK_COMPONENT_DEV_GROUP devel)
set(CPACK_COMPONENT_DEB_DEV_GROUP devel)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # NAME_VERSION_ARCH.deb, NAME-dbgsym_..._ARCH.ddeb
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${LITHOS_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_DEBUG OFF)

# lithos
set(CPACK_DEBIAN_MAIN_PACKAGE_NAME lithos)
set(CPACK_DEBIAN_MAIN_PACKAGE_SECTION admin)
# Depends from dpkg-shlibdeps (dpkg-dev) on the dynamically linked tools:
# libc6 only, since libyaml, libsodium, libseccomp, libcap, libstdc++ and
# libgcc are linked statically (LITHOS_STATIC_DEPS) and lithos_knot and
# lithos_cmd are static-pie. No Recommends: what the tools run is in
# Essential packages (lithos_mkdev: coreutils; the knot's name lookups:
# getent of libc-bin), and bridged networks are set up over netlink, not
# with ip(8) (runtime/src/knot_net.cpp).
set(CPACK_DEBIAN_MAIN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_MAIN_DEBUGINFO_PACKAGE ON)
set(CPACK_DEBIAN_MAIN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/debian/conffiles
    ${PROJECT_SOURCE_DIR}/packaging/debian/postinst)
set(CPACK_DEBIAN_MAIN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_MAIN_DESCRIPTION "per-host process supervisor and containerizer
lithos runs the processes of a host in containers from read-only images,
as declared in YAML configs: a master config, one sandbox config per
sandbox (what its containers may do), one process config per sandbox (what
runs, how many instances) and a container config inside each image.
.
lithos_tree supervises the instances (restarts, kill timeouts, in-place
reload that keeps containers running, adoption after a crash); lithos_knot
starts each one with namespaces, a read-only root, volumes, cgroups, all
capabilities dropped, no_new_privs, Landlock and a seccomp filter.
lithos_check validates configs (also in CI), lithos_switch replaces a
sandbox's processes atomically, lithos_cmd runs one-off commands,
lithos_ps shows what runs, lithos_clean removes unused images and
lithos_crypt manages encrypted secrets.
.
The package installs a systemd unit, lithos.service, which it neither
enables nor starts, and an example master config in /etc/lithos.")

# lithos-dev
set(CPACK_DEBIAN_DEVEL_PACKAGE_NAME lithos-dev)
set(CPACK_DEBIAN_DEVEL_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEVEL_PACKAGE_SHLIBDEPS OFF)  # static archives and headers only
set(CPACK_DEBIAN_DEVEL_DEBUGINFO_PACKAGE OFF)
# What lithosConfig.cmake and lithos-policy.pc need: the C libraries' -dev
# packages (their .pc files and archives; Requires.private of
# lithos-policy.pc) and pkg-config (lithosConfig.cmake: find_dependency
# (PkgConfig)). Not lithos: the static libraries use nothing of the
# programs, and a program (or CI job) built on the policy library should not
# have to install the supervisor and its unit.
set(CPACK_DEBIAN_DEVEL_PACKAGE_DEPENDS
    "libyaml-dev, libsodium-dev, libseccomp-dev, libcap-dev, pkg-config")
set(CPACK_DEBIAN_DEVEL_DESCRIPTION "lithos policy library: config reading, checks, launch plans
The policy library of lithos, a per-host process supervisor and
containerizer: it reads the four lithos YAML configs (master, sandbox,
process and container) into typed, cross-checked configuration, reports
problems with file, line and column, and resolves the launch plan of each
process instance. It is what lithos_check runs.
.
This package contains the C++20 headers, the static libraries
(lithos_policy, lithos_plan, lithos_crypt), a CMake package
(find_package(lithos CONFIG)) and a pkg-config file (lithos-policy).")

include(CPack)

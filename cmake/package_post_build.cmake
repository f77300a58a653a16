# CPACK_POST_BUILD_SCRIPTS of cmake/package.cmake: repairs the -dbgsym .ddeb
# that CPackDeb (CMake 3.25) makes with component packaging:
#   * its DEBIAN/md5sums names the files by their absolute staging path
#     (lintian: md5sums-lists-nonexistent-file): computed again, relative;
#   * no /usr/share/doc/lithos-dbgsym (lintian: no-copyright-file): a
#     symlink to lithos's doc directory, as dh_strip makes (the dbgsym
#     package depends on lithos of the same version);
#   * the .debug files are mode 0755: 0644, as dh_strip makes them.
# Unpacked with dpkg-deb -R and packed again with dpkg-deb --build.
set(_ddebs "")
foreach(file IN LISTS CPACK_PACKAGE_FILES)
  if(file MATCHES "-dbgsym_[^/]*\\.ddeb$")
    list(APPEND _ddebs "${file}")
  endif()
endforeach()
if(NOT _ddebs)
  # CPACK_PACKAGE_FILES lists the .debs only: find the .ddeb beside them.
  foreach(file IN LISTS CPACK_PACKAGE_FILES)
    get_filename_component(dir "${file}" DIRECTORY)
    file(GLOB found "${dir}/*-dbgsym_*.ddeb")
    list(APPEND _ddebs ${found})
  endforeach()
  list(REMOVE_DUPLICATES _ddebs)
endif()
if(NOT _ddebs)
  message(FATAL_ERROR "package_post_build: no -dbgsym .ddeb among ${CPACK_PACKAGE_FILES}")
endif()
find_program(_dpkg_deb dpkg-deb REQUIRED)
foreach(ddeb IN LISTS _ddebs)
  get_filename_component(name "${ddeb}" NAME)
  string(REGEX REPLACE "-dbgsym_.*" "" package "${name}")
  set(work "${CPACK_TOPLEVEL_DIRECTORY}/ddeb-fix")
  file(REMOVE_RECURSE "${work}")
  execute_process(COMMAND "${_dpkg_deb}" --raw-extract "${ddeb}" "${work}" COMMAND_ERROR_IS_FATAL ANY)
  file(GLOB_RECURSE files LIST_DIRECTORIES false RELATIVE "${work}" "${work}/usr/*")
  list(SORT files)
  set(md5sums "")
  foreach(f IN LISTS files)
    if(IS_SYMLINK "${work}/${f}")
      continue()
    endif()
    file(CHMOD "${work}/${f}" FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
    file(MD5 "${work}/${f}" sum)
    string(APPEND md5sums "${sum}  ${f}\n")
  endforeach()
  file(WRITE "${work}/DEBIAN/md5sums" "${md5sums}")
  file(MAKE_DIRECTORY "${work}/usr/share/doc")
  file(CREATE_LINK "${package}" "${work}/usr/share/doc/${package}-dbgsym" SYMBOLIC)
  execute_process(COMMAND "${_dpkg_deb}" --root-owner-group -Z${CPACK_LITHOS_DPKG_COMPRESSION}
                          --build "${work}" "${ddeb}"
                  OUTPUT_QUIET COMMAND_ERROR_IS_FATAL ANY)
  file(REMOVE_RECURSE "${work}")
  message(STATUS "package_post_build: repaired ${ddeb}")
endforeach()

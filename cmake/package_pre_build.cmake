# CPACK_PRE_BUILD_SCRIPTS of cmake/package.cmake: runs on CPack's staging
# directories (CPACK_TEMPORARY_DIRECTORY/<group>) before the packages are made.
#   main:  drop the .comment section (compiler versions) from the programs
#          and compress their debug sections, as dh_strip does; CPackDeb
#          then splits the debug info off (lithos-dbgsym) and strips them.
#   devel: strip the debug info from the static libraries (strip
#          --strip-debug, as dh_strip does for -dev packages): 70 MB less.
foreach(tool CPACK_LITHOS_OBJCOPY CPACK_LITHOS_STRIP)
  if(NOT EXISTS "${${tool}}")
    message(FATAL_ERROR "package_pre_build: ${tool} not found (${${tool}})")
  endif()
endforeach()
set(_stage "${CPACK_TEMPORARY_DIRECTORY}")
if(NOT IS_DIRECTORY "${_stage}/main" OR NOT IS_DIRECTORY "${_stage}/devel")
  message(FATAL_ERROR "package_pre_build: no staging directories main/ and devel/ in ${_stage}")
endif()
file(GLOB _programs "${_stage}/main/usr/bin/*")
foreach(program IN LISTS _programs)
  file(READ "${program}" _magic LIMIT 4 HEX)
  if(_magic STREQUAL "7f454c46")  # ELF
    execute_process(COMMAND "${CPACK_LITHOS_OBJCOPY}" --remove-section=.comment
                            --compress-debug-sections=zlib "${program}"
                    COMMAND_ERROR_IS_FATAL ANY)
  endif()
endforeach()
file(GLOB_RECURSE _archives "${_stage}/devel/*.a")
foreach(archive IN LISTS _archives)
  execute_process(COMMAND "${CPACK_LITHOS_STRIP}" --strip-debug --remove-section=.comment
                          --enable-deterministic-archives "${archive}"
                  COMMAND_ERROR_IS_FATAL ANY)
endforeach()

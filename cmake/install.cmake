# What another program needs to use the policy library (README.md, "Using
# the policy library"), all in the install component `dev` (the programs,
# the unit and the docs are in the default one), so that a package can put
# them apart (`cmake --install BUILD --component dev`):
#   include/lithos/{common,crypt,policy}/   the public headers
#   lib/liblithos_{policy,plan,crypt}.a     the static libraries
#   lib/cmake/lithos/                       find_package(lithos CONFIG): lithos::policy,
#                                           lithos::plan, lithos::crypt, lithos::common
#   lib/pkgconfig/lithos-policy.pc          pkg-config --static lithos-policy
# tests/consumer_test.sh builds a program against the installed files.
include(CMakePackageConfigHelpers)

set(LITHOS_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/lithos)
set(LITHOS_LIBRARIES lithos_common lithos_plan lithos_crypt lithos_policy)
foreach(target ${LITHOS_LIBRARIES})
  string(REPLACE "lithos_" "" export_name ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${export_name})
  # The same names in the build tree (add_subdirectory / FetchContent users).
  add_library(lithos::${export_name} ALIAS ${target})
endforeach()

foreach(dir common/include crypt/include policy/include)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${dir}/lithos DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
          COMPONENT dev FILES_MATCHING PATTERN "*.hpp")
endforeach()
install(TARGETS ${LITHOS_LIBRARIES} EXPORT lithosTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
install(EXPORT lithosTargets NAMESPACE lithos:: DESTINATION ${LITHOS_INSTALL_CMAKEDIR}
        FILE lithosTargets.cmake COMPONENT dev)

# The exported link interface names the pkg-config targets of the C libraries
# (PkgConfig::YAML, ...: LINK_ONLY, no header includes them); lithosConfig.cmake
# re-creates them under the same names, for the same modules, and links their
# archives when the build did (LITHOS_STATIC_DEPS).
set(LITHOS_PKG_PREFIXES YAML SODIUM SECCOMP CAP)
set(LITHOS_PKG_MODULES yaml-0.1 libsodium libseccomp libcap)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/lithosConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/lithosConfig.cmake
                              INSTALL_DESTINATION ${LITHOS_INSTALL_CMAKEDIR})
# Before 1.0 a minor release may change the API and every release changes the
# ABI (static libraries, mostly headers): find_package(lithos 0.19) accepts
# 0.19.z only, not 0.20 (SameMajorVersion would accept any 0.y).
write_basic_package_version_file(${PROJECT_BINARY_DIR}/lithosConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/lithosConfig.cmake ${PROJECT_BINARY_DIR}/lithosConfigVersion.cmake
        DESTINATION ${LITHOS_INSTALL_CMAKEDIR} COMPONENT dev)

# lithos-policy.pc names the prefix given at install time (`cmake --install
# --prefix`), not only the configured one: configured here with everything
# but the prefix, and again when installed.
set(LITHOS_PC_PREFIX "@CMAKE_INSTALL_PREFIX@")
foreach(kind LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${kind}}")
    set(LITHOS_PC_${kind} "${CMAKE_INSTALL_${kind}}")
  else()
    set(LITHOS_PC_${kind} "\${prefix}/${CMAKE_INSTALL_${kind}}")
  endif()
endforeach()
configure_file(${PROJECT_SOURCE_DIR}/cmake/lithos-policy.pc.in
               ${PROJECT_BINARY_DIR}/pkgconfig/lithos-policy.pc.in @ONLY)
install(CODE "configure_file(\"${PROJECT_BINARY_DIR}/pkgconfig/lithos-policy.pc.in\"
                             \"${PROJECT_BINARY_DIR}/pkgconfig/lithos-policy.pc\" @ONLY)"
        COMPONENT dev)
install(FILES ${PROJECT_BINARY_DIR}/pkgconfig/lithos-policy.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

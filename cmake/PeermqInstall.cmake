# Installs peermq as one CMake package (peermq::core, peermq::discovery, peermq::patterns,
# peermq::metrics and the umbrella peermq::peermq), a pkg-config module `peermq`, the public
# headers, and the `peermq` tool and the examples when they are part of the build.
#
# Components: peermq_development (libraries, headers, package files), peermq_runtime (tool),
# peermq_examples (example programs).
include(CMakePackageConfigHelpers)

set(PEERMQ_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/peermq"
    CACHE STRING "Where peermqConfig.cmake is installed, relative to the prefix")
set(PEERMQ_INSTALL_PKGCONFIGDIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig"
    CACHE STRING "Where peermq.pc is installed, relative to the prefix")

# Dependents before their dependencies: the order static linking needs.
set(_peermq_libraries peermq_metrics peermq_patterns peermq_discovery peermq_core)

install(TARGETS ${_peermq_libraries} peermq
  EXPORT peermqTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT peermq_development
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT peermq_development
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT peermq_development)

install(DIRECTORY
    ${PROJECT_SOURCE_DIR}/core/include/
    ${PROJECT_SOURCE_DIR}/discovery/include/
    ${PROJECT_SOURCE_DIR}/patterns/include/
    ${PROJECT_SOURCE_DIR}/metrics/include/
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  COMPONENT peermq_development
  FILES_MATCHING PATTERN "*.hpp" PATTERN "*.h")

# A static peermq carries its private dependencies into every link of a user program, so the
# package config and the .pc file must bring them along; a shared one does not.
set(PEERMQ_STATIC_LIBRARIES OFF)
foreach(_lib IN LISTS _peermq_libraries)
  get_target_property(_type ${_lib} TYPE)
  if(_type STREQUAL "STATIC_LIBRARY")
    set(PEERMQ_STATIC_LIBRARIES ON)
  endif()
endforeach()

# --- CMake package --------------------------------------------------------------------------------
install(EXPORT peermqTargets
  NAMESPACE peermq::
  FILE peermqTargets.cmake
  DESTINATION ${PEERMQ_INSTALL_CMAKEDIR}
  COMPONENT peermq_development)

configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/peermqConfig.cmake.in
  ${PROJECT_BINARY_DIR}/peermqConfig.cmake
  INSTALL_DESTINATION ${PEERMQ_INSTALL_CMAKEDIR})
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/peermqConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion)
install(FILES
    ${PROJECT_BINARY_DIR}/peermqConfig.cmake
    ${PROJECT_BINARY_DIR}/peermqConfigVersion.cmake
  DESTINATION ${PEERMQ_INSTALL_CMAKEDIR}
  COMPONENT peermq_development)

# --- pkg-config -----------------------------------------------------------------------------------
# Paths relative to the .pc file (${pcfiledir}) keep the install relocatable, which also makes
# `cmake --install --prefix <elsewhere>` produce a correct file.
if(IS_ABSOLUTE "${PEERMQ_INSTALL_PKGCONFIGDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}"
   OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(PEERMQ_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(PEERMQ_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(PEERMQ_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  file(RELATIVE_PATH _pc_to_prefix "/prefix/${PEERMQ_INSTALL_PKGCONFIGDIR}" "/prefix")
  string(REGEX REPLACE "/$" "" _pc_to_prefix "${_pc_to_prefix}")
  set(PEERMQ_PC_PREFIX "\${pcfiledir}/${_pc_to_prefix}")
  set(PEERMQ_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(PEERMQ_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()

set(PEERMQ_PC_LIBS "")
foreach(_lib IN LISTS _peermq_libraries)
  get_target_property(_name ${_lib} OUTPUT_NAME)
  if(NOT _name)
    set(_name ${_lib})
  endif()
  string(APPEND PEERMQ_PC_LIBS " -l${_name}")
endforeach()
set(_pc_requires "libzmq >= 4.3, avahi-client, avahi-core, sqlite3, cpp-httplib")
set(_pc_threads "")
if(CMAKE_USE_PTHREADS_INIT)
  set(_pc_threads "-pthread")
endif()
# `pkg-config --libs` (without --static) ignores the .private fields: for static archives the
# dependencies have to be public or a plain `pkg-config --cflags --libs peermq` link fails.
if(PEERMQ_STATIC_LIBRARIES)
  set(PEERMQ_PC_REQUIRES "${_pc_requires}")
  set(PEERMQ_PC_REQUIRES_PRIVATE "")
  string(APPEND PEERMQ_PC_LIBS " ${_pc_threads}")
  set(PEERMQ_PC_LIBS_PRIVATE "")
else()
  set(PEERMQ_PC_REQUIRES "")
  set(PEERMQ_PC_REQUIRES_PRIVATE "${_pc_requires}")
  set(PEERMQ_PC_LIBS_PRIVATE "${_pc_threads}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/peermq.pc.in ${PROJECT_BINARY_DIR}/peermq.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/peermq.pc
  DESTINATION ${PEERMQ_INSTALL_PKGCONFIGDIR}
  COMPONENT peermq_development)

# --- tool and examples ----------------------------------------------------------------------------
# Every executable defined under `dir` (recursively), when that directory is part of the build.
function(_peermq_executables_under dir out)
  set(found "")
  get_property(subdirs DIRECTORY ${PROJECT_SOURCE_DIR} PROPERTY SUBDIRECTORIES)
  if(NOT dir IN_LIST subdirs)
    set(${out} "" PARENT_SCOPE)
    return()
  endif()
  set(pending ${dir})
  while(pending)
    list(POP_FRONT pending current)
    get_property(targets DIRECTORY ${current} PROPERTY BUILDSYSTEM_TARGETS)
    foreach(target IN LISTS targets)
      get_target_property(type ${target} TYPE)
      if(type STREQUAL "EXECUTABLE")
        list(APPEND found ${target})
      endif()
    endforeach()
    get_property(children DIRECTORY ${current} PROPERTY SUBDIRECTORIES)
    list(APPEND pending ${children})
  endwhile()
  set(${out} ${found} PARENT_SCOPE)
endfunction()

_peermq_executables_under(${PROJECT_SOURCE_DIR}/tools _peermq_tools)
if(_peermq_tools)
  install(TARGETS ${_peermq_tools}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT peermq_runtime)
endif()

# Example programs have generic names (worker, sender, ...): keep them out of bin/.
_peermq_executables_under(${PROJECT_SOURCE_DIR}/examples _peermq_examples)
if(_peermq_examples)
  install(TARGETS ${_peermq_examples}
    RUNTIME DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/peermq/examples COMPONENT peermq_examples)
endif()

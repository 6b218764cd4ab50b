# Debian packages of peermq, made by CPack from the install components (cmake/PeermqInstall.cmake):
#
#   peermq-dev    the libraries (static archives), the public headers, the CMake package and
#                 peermq.pc: what a program that links peermq builds against
#   peermq-tools  the `peermq` tool (its shared-library dependencies found by dpkg-shlibdeps)
#
# The libraries are static, so there is no runtime library package: a program built against
# peermq-dev carries peermq in itself, and needs only ZeroMQ, Avahi and SQLite at run time.
#
#   cpack --config build/<preset>/CPackConfig.cmake -B <dir>    (after building the tree)
#   apt install ./<dir>/peermq-dev_*.deb ./<dir>/peermq-tools_*.deb
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME peermq)
set(CPACK_PACKAGE_VENDOR peermq)
set(CPACK_PACKAGE_CONTACT "peermq developers <peermq@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL peermq_development peermq_runtime)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)

set(CPACK_DEBIAN_PEERMQ_DEVELOPMENT_PACKAGE_NAME peermq-dev)
set(CPACK_DEBIAN_PEERMQ_DEVELOPMENT_PACKAGE_SECTION libdevel)
# What peermqConfig.cmake and peermq.pc find, and the headers the public ones include.
set(CPACK_DEBIAN_PEERMQ_DEVELOPMENT_PACKAGE_DEPENDS
    "libzmq3-dev (>= 4.3), cppzmq-dev, libmsgpack-cxx-dev, libavahi-client-dev, libavahi-core-dev, libsqlite3-dev, libcpp-httplib-dev")
set(CPACK_COMPONENT_PEERMQ_DEVELOPMENT_DESCRIPTION
    "peermq: libraries, headers, CMake package and pkg-config module\n${PROJECT_DESCRIPTION}.")

set(CPACK_DEBIAN_PEERMQ_RUNTIME_PACKAGE_NAME peermq-tools)
set(CPACK_DEBIAN_PEERMQ_RUNTIME_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PEERMQ_RUNTIME_PACKAGE_SHLIBDEPS ON)
set(CPACK_COMPONENT_PEERMQ_RUNTIME_DESCRIPTION
    "peermq: the peermq tool (peers, stats, send, consume, tap, dlq, trust, doctor)\n${PROJECT_DESCRIPTION}.")

include(CPack)

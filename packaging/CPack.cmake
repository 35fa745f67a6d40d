# packaging/CPack.cmake - install rules for what the .deb holds beyond the
# binary and the plugins (which their own CMakeLists install), and the CPack
# settings. Build the package with: cpack -G DEB (in a build configured with
# -DCMAKE_INSTALL_PREFIX=/usr so that the config is /etc/sluice).
set(SLUICE_BIN "${CMAKE_INSTALL_FULL_BINDIR}/sluice")
set(SLUICE_CONF "${CMAKE_INSTALL_FULL_SYSCONFDIR}/sluice/sluice.conf")
configure_file(${CMAKE_CURRENT_LIST_DIR}/sluice.service ${CMAKE_BINARY_DIR}/packaging/sluice.service
               @ONLY)

pkg_get_variable(SLUICE_SYSTEMD_UNIT_DIR systemd systemdsystemunitdir)
if(NOT SLUICE_SYSTEMD_UNIT_DIR)
  set(SLUICE_SYSTEMD_UNIT_DIR /lib/systemd/system)
endif()
install(FILES ${CMAKE_BINARY_DIR}/packaging/sluice.service DESTINATION ${SLUICE_SYSTEMD_UNIT_DIR})
install(FILES ${CMAKE_CURRENT_LIST_DIR}/sluice.conf
        DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/sluice)
install(DIRECTORY DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/sluice/conf.d)
install(FILES ${CMAKE_CURRENT_LIST_DIR}/sluice.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${CMAKE_CURRENT_LIST_DIR}/sluice.conf.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)

file(WRITE ${CMAKE_BINARY_DIR}/packaging/conffiles "${SLUICE_CONF}\n")

set(CPACK_PACKAGE_NAME sluice)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "sluice maintainers <sluice@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "data export runtime: initial and incremental sync into SQL targets")
set(CPACK_DEBIAN_PACKAGE_SECTION database)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${CMAKE_BINARY_DIR}/packaging/conffiles;${CMAKE_CURRENT_LIST_DIR}/postinst;${CMAKE_CURRENT_LIST_DIR}/prerm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_GENERATOR DEB)
include(CPack)

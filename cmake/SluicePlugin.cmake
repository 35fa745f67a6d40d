# sluice_add_plugin(<kind>-<name> SOURCES a.c b.c [LIBS lib...])
#
# Builds plugins/<kind>-<name>.so into the build tree's plugin folder (where a
# sluice binary run from the build tree finds it) with hidden visibility, so
# only the SLUICE_EXPORT entry function is exported, and installs it.
function(sluice_add_plugin target)
  cmake_parse_arguments(P "" "" "SOURCES;LIBS" ${ARGN})
  add_library(${target} MODULE ${P_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME ${target}
    LIBRARY_OUTPUT_DIRECTORY ${SLUICE_BUILD_PLUGIN_DIR}
    C_VISIBILITY_PRESET hidden)
  target_link_libraries(${target} PRIVATE sluice_sdk sluice_warnings ${P_LIBS})
  target_link_options(${target} PRIVATE -Wl,--no-undefined)
  install(TARGETS ${target} LIBRARY DESTINATION ${SLUICE_PLUGIN_INSTALL_DIR})
endfunction()

# The reward model's Bradley-Terry loss and DPO's loss (chat/preference_batch.h)
# against their textbook PyTorch forms, values and gradients (label
# `conformance`). Included from tests/conformance/CMakeLists.txt; one Python
# process drives the ember tool once (importing torch dominates the time).
if(NOT DEFINED EMBER_PEER)
  set(EMBER_PEER ${CMAKE_CURRENT_LIST_DIR}/peer_python.sh)
endif()

add_executable(ember_preference_losses_tool ${CMAKE_CURRENT_LIST_DIR}/preference_losses_tool.cpp)
target_link_libraries(ember_preference_losses_tool PRIVATE ember_lib)

add_test(NAME conformance.preference_losses
  COMMAND sh ${EMBER_PEER} ${CMAKE_CURRENT_LIST_DIR}/preference_losses.py
          --tool $<TARGET_FILE:ember_preference_losses_tool> --dir ${CMAKE_CURRENT_BINARY_DIR}/preference_losses)
set_tests_properties(conformance.preference_losses PROPERTIES LABELS conformance TIMEOUT 300)

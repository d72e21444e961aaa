# PPO's arithmetic (chat/ppo_math.h) against PyTorch (label `conformance`): the
# clipped policy and value losses with their gradients, clip fractions, KL
# estimates, entropy, KL-penalised rewards, GAE and whitening on fixed tensors,
# in float64 and float32, within 1e-5. Included from tests/conformance/CMakeLists.txt;
# runs through peer_python.sh (needs `torch` and `safetensors` in the peers venv).
if(NOT DEFINED EMBER_PEER)
  set(EMBER_PEER ${CMAKE_CURRENT_LIST_DIR}/peer_python.sh)
endif()

add_executable(ember_ppo_tool ${CMAKE_CURRENT_LIST_DIR}/ppo_tool.cpp)
target_link_libraries(ember_ppo_tool PRIVATE ember_lib)

add_test(NAME conformance.ppo
  COMMAND sh ${EMBER_PEER} ${CMAKE_CURRENT_LIST_DIR}/ppo.py
          --tool $<TARGET_FILE:ember_ppo_tool> --dir ${CMAKE_CURRENT_BINARY_DIR}/ppo)
set_tests_properties(conformance.ppo PROPERTIES LABELS conformance TIMEOUT 300)

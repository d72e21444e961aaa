# ember's GPT against Hugging Face transformers' GPT2LMHeadModel (label `conformance`):
# import of a save_pretrained folder (logits, loss and every parameter gradient) and
# export that from_pretrained loads with the same logits. Included from
# tests/conformance/CMakeLists.txt; runs through peer_python.sh (needs `transformers`
# in the peers venv, see requirements.txt).
if(NOT DEFINED EMBER_PEER)
  set(EMBER_PEER ${CMAKE_CURRENT_LIST_DIR}/peer_python.sh)
endif()

add_executable(ember_gpt2_hf_tool ${CMAKE_CURRENT_LIST_DIR}/gpt2_hf_tool.cpp)
target_link_libraries(ember_gpt2_hf_tool PRIVATE ember_lib)

add_test(NAME conformance.gpt2_hf
  COMMAND sh ${EMBER_PEER} ${CMAKE_CURRENT_LIST_DIR}/gpt2_hf.py
          --tool $<TARGET_FILE:ember_gpt2_hf_tool> --dir ${CMAKE_CURRENT_BINARY_DIR}/gpt2_hf)
set_tests_properties(conformance.gpt2_hf PROPERTIES LABELS conformance TIMEOUT 600)

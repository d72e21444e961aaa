# ember's ONNX export against onnxruntime (label `conformance`): a tool writes two small
# random GPTs (GPT-2 style and modern) as ONNX files and checkpoints; onnx_export.py runs
# them, and `ember export` on the checkpoints, in onnxruntime and compares the logits with
# ember's. Included from tests/conformance/CMakeLists.txt; runs through peer_python.sh
# (needs `onnxruntime` in the peers venv, see requirements.txt).
if(NOT DEFINED EMBER_PEER)
  set(EMBER_PEER ${CMAKE_CURRENT_LIST_DIR}/peer_python.sh)
endif()

add_executable(ember_onnx_export_tool ${CMAKE_CURRENT_LIST_DIR}/onnx_export_tool.cpp)
target_link_libraries(ember_onnx_export_tool PRIVATE ember_lib)
# The byte tokenizer of tests/serve/scripted_model.h.
target_include_directories(ember_onnx_export_tool PRIVATE ${CMAKE_CURRENT_LIST_DIR}/..)

add_test(NAME conformance.onnx_export
  COMMAND sh ${EMBER_PEER} ${CMAKE_CURRENT_LIST_DIR}/onnx_export.py
          --tool $<TARGET_FILE:ember_onnx_export_tool> --ember $<TARGET_FILE:ember>
          --dir ${CMAKE_CURRENT_BINARY_DIR}/onnx_export)
set_tests_properties(conformance.onnx_export PROPERTIES LABELS conformance TIMEOUT 300)

# ember's tokenizer against the tiktoken package (label `conformance`), one test per
# encoding: `ember tokenizer encode/decode --tiktoken FILE` must give tiktoken's ids for
# a few hundred KB of generated varied text. Included from tests/conformance/CMakeLists.txt;
# runs through peer_python.sh like the other peers (needs `tiktoken` in the peers venv).
# The rank files come from $EMBER_TIKTOKEN_DIR or ../shared/data/tiktoken (see the script);
# where they are missing the script exits 77 and CTest reports the test as skipped.
if(NOT DEFINED EMBER_PEER)
  set(EMBER_PEER ${CMAKE_CURRENT_LIST_DIR}/peer_python.sh)
endif()

foreach(encoding gpt2 cl100k_base o200k_base)
  add_test(NAME conformance.tiktoken.${encoding}
    COMMAND sh ${EMBER_PEER} ${CMAKE_CURRENT_LIST_DIR}/tiktoken_conformance.py
            --ember $<TARGET_FILE:ember> --encoding ${encoding})
  set_tests_properties(conformance.tiktoken.${encoding} PROPERTIES LABELS conformance TIMEOUT 300 SKIP_RETURN_CODE 77)
endforeach()

# Under EMBER_SANITIZE, the MPI tests (label `dist`) run with LeakSanitizer
# suppressions for OpenMPI's own allocations (openmpi.lsan.supp beside this
# file; docs/TESTING.md). A CMakeLists.txt that registers `dist` tests calls
# ember_dist_sanitizer_env() after them: it adds to their environment
#   LSAN_OPTIONS  the suppressions, and whole stacks (fast_unwind_on_malloc=0:
#                 OpenMPI is built without frame pointers, and the suppressions
#                 match functions deep inside it);
#   OMPI_MCA_mca_base_component_disable_dlclose=1  OpenMPI's plugins stay
#                 loaded at exit, so frames inside them keep their names;
# and multiplies their TIMEOUT by EMBER_SANITIZE_TIMEOUT_FACTOR (default 4):
# training under ASan + UBSan at -O1 runs several times slower.
set(EMBER_LSAN_SUPPRESSIONS ${CMAKE_CURRENT_LIST_DIR}/openmpi.lsan.supp)
set(EMBER_SANITIZE_TIMEOUT_FACTOR 4 CACHE STRING "Factor on the dist tests' timeouts in a sanitized build")

function(ember_dist_sanitizer_env)
  if(NOT EMBER_SANITIZE)
    return()
  endif()
  get_property(tests DIRECTORY PROPERTY TESTS)
  foreach(t IN LISTS tests)
    get_property(labels TEST ${t} PROPERTY LABELS)
    if("dist" IN_LIST labels)
      set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT
                   "LSAN_OPTIONS=suppressions=${EMBER_LSAN_SUPPRESSIONS}:fast_unwind_on_malloc=0"
                   "OMPI_MCA_mca_base_component_disable_dlclose=1")
      get_property(timeout TEST ${t} PROPERTY TIMEOUT)
      if(timeout)
        math(EXPR timeout "${timeout} * ${EMBER_SANITIZE_TIMEOUT_FACTOR}")
        set_property(TEST ${t} PROPERTY TIMEOUT ${timeout})
      endif()
    endif()
  endforeach()
endfunction()

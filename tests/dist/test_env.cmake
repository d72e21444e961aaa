# The environment of the MPI tests (label `dist`). A CMakeLists.txt that
# registers `dist` tests calls ember_dist_test_env() after them. Each test gets
#   TMPDIR        a folder of its own in the build tree, where OpenMPI makes its
#                 session directory: two mpiruns starting at once under the same
#                 /tmp race to create /tmp/ompi.<host>.<uid> and one fails with
#                 "mkdir ... File exists" (seen in CI with ctest -j).
# Under EMBER_SANITIZE they also run with LeakSanitizer suppressions for
# OpenMPI's own allocations (openmpi.lsan.supp beside this file; docs/TESTING.md):
#   LSAN_OPTIONS  the suppressions, and whole stacks (fast_unwind_on_malloc=0:
#                 OpenMPI is built without frame pointers, and the suppressions
#                 match functions deep inside it);
#   OMPI_MCA_mca_base_component_disable_dlclose=1  OpenMPI's plugins stay
#                 loaded at exit, so frames inside them keep their names;
# and their TIMEOUT is multiplied by EMBER_SANITIZE_TIMEOUT_FACTOR (default 4):
# training under ASan + UBSan at -O1 runs several times slower.
set(EMBER_LSAN_SUPPRESSIONS ${CMAKE_CURRENT_LIST_DIR}/openmpi.lsan.supp)
set(EMBER_SANITIZE_TIMEOUT_FACTOR 4 CACHE STRING "Factor on the dist tests' timeouts in a sanitized build")

function(ember_dist_test_env)
  get_property(tests DIRECTORY PROPERTY TESTS)
  foreach(t IN LISTS tests)
    get_property(labels TEST ${t} PROPERTY LABELS)
    if(NOT "dist" IN_LIST labels)
      continue()
    endif()
    set(tmp ${CMAKE_CURRENT_BINARY_DIR}/mpi-tmp/${t})
    file(MAKE_DIRECTORY ${tmp})
    set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT "TMPDIR=${tmp}")
    if(EMBER_SANITIZE)
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

// Shared assertions for the unit tests.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "ember/core/error.h"

// The statement throws ember::Error whose message starts with `prefix`.
#define EXPECT_ERROR(stmt, prefix)                                                      \
  do {                                                                                  \
    try {                                                                               \
      (void)(stmt);                                                                     \
      ADD_FAILURE() << #stmt << " did not throw";                                       \
    } catch (const ::ember::Error& e) {                                                 \
      EXPECT_EQ(std::string(e.what()).rfind(prefix, 0), 0u) << "message: " << e.what(); \
    }                                                                                   \
  } while (0)

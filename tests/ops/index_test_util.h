// Shared helpers for the index / sort op tests.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "ember/ember.h"

// Expects `stmt` to throw ember::Error whose message contains every given substring.
#define EXPECT_EMBER_ERROR(stmt, ...)                                                     \
  do {                                                                                    \
    try {                                                                                 \
      (void)(stmt);                                                                       \
      ADD_FAILURE() << "no ember::Error from: " #stmt;                                    \
    } catch (const ember::Error& e) {                                                     \
      std::string msg = e.what();                                                         \
      for (const char* part : {__VA_ARGS__})                                              \
        EXPECT_NE(msg.find(part), std::string::npos) << "'" << part << "' not in: " << msg; \
    }                                                                                     \
  } while (0)

#define EXPECT_GRADCHECK(fn, inputs)                          \
  do {                                                                 \
    ember::GradcheckResult r_ = ember::gradcheck(fn, inputs);          \
    EXPECT_TRUE(r_.ok) << r_.message;                                  \
  } while (0)

inline std::vector<float> fvec(const ember::Tensor& t) { return t.to_vector<float>(); }
inline std::vector<int64_t> ivec(const ember::Tensor& t) { return t.to_vector<int64_t>(); }

// The rank drift guard: data-parallel replicas must hold bitwise the same
// parameters after every step (each applies the same averaged gradients to the
// same weights). Before a checkpoint is written the ranks compare a 64-bit
// checksum of their parameters' bytes, so a rank that drifted (a
// nondeterministic kernel, a missed or corrupted collective, a bad node) stops
// the run with a clear error instead of being saved, silently, as rank 0's
// weights while the others train something else.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ember/core/tensor.h"
#include "ember/dist/communicator.h"

namespace ember::dist {

// A 64-bit hash of the tensors' bytes in order (with each one's size, so a
// byte cannot move between tensors unnoticed): changing any 8-byte word
// changes it. One pass over the data; CPU tensors are not copied.
uint64_t tensors_checksum(const std::vector<Tensor>& tensors);

// Collective over `comm`, whose ranks must hold the same `tensors`: every rank
// checks every rank's checksum and, when they differ, throws the same one-line
// error on every rank, prefixed "[op] when: ", naming the ranks that hold
// another checksum than most ranks (rank 0's on a tie). `label` is the number
// this rank goes by in the error (its world rank, when `comm` is a
// sub-communicator).
void check_replicas_agree(Communicator& comm, const std::vector<Tensor>& tensors, const std::string& op,
                          const std::string& when, int label);

}  // namespace ember::dist

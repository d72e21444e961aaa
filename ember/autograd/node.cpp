// Autograd node bookkeeping.
#include "ember/autograd/node.h"

#include <atomic>

namespace ember {

namespace {
std::atomic<uint64_t> next_sequence{0};
}

Node::Node(PrimitivePtr prim, std::vector<Tensor> inputs, std::vector<Tensor> outputs)
    : prim_(std::move(prim)), inputs_(std::move(inputs)), outputs_(std::move(outputs)),
      sequence_(next_sequence.fetch_add(1)) {
  for (const Tensor& o : outputs_) output_specs_.push_back({o.shape(), o.dtype()});
}

void Node::release() {
  inputs_.clear();
  outputs_.clear();
  released_ = true;
}

}  // namespace ember

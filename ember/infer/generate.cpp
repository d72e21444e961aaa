// Reference autoregressive generation (see generate.h).
#include "ember/infer/generate.h"

#include <algorithm>

#include "ember/autograd/grad_mode.h"
#include "ember/core/error.h"
#include "ember/ops/ops.h"

namespace ember::infer {

std::vector<int64_t> generate(models::GPT& model, const std::vector<int64_t>& prompt, const GenerateOptions& options,
                              Generator& gen, const std::function<bool(int64_t)>& on_token) {
  options.sampling.validate();
  if (prompt.empty()) fail("generate", "the prompt is empty (start from an <|endoftext|> token for an empty text)");
  const int64_t block = model.config().block_size;
  const int64_t vocab = model.config().vocab_size;
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  // The model's device (its parameters'): the context goes there, the last logits come back.
  const std::vector<Tensor> params = model.parameters();
  const Device device = params.empty() ? Device::cpu() : params.front().device();
  std::vector<int64_t> context = prompt, produced;
  for (int64_t i = 0; i < options.max_new_tokens; ++i) {
    // The newest block_size tokens: the model has no positions beyond them.
    const size_t start = context.size() > size_t(block) ? context.size() - size_t(block) : 0;
    std::vector<int64_t> window(context.begin() + std::ptrdiff_t(start), context.end());
    const int64_t T = int64_t(window.size());
    Tensor logits = model.forward(tensor_i64(window, {1, T}, device));
    Tensor last = contiguous(to_device(cast(select(select(logits, 0, 0), 0, T - 1), DType::f32), Device::cpu()));
    const int64_t token = sample_token(last.data<float>(), vocab, options.sampling, gen);
    produced.push_back(token);
    context.push_back(token);
    if (on_token && !on_token(token)) break;
    if (std::find(options.stop_tokens.begin(), options.stop_tokens.end(), token) != options.stop_tokens.end()) break;
  }
  model.train(was_training);
  return produced;
}

}  // namespace ember::infer

// Loading a checkpoint for serving (see served_model.h).
#include "ember/serve/served_model.h"

#include "ember/core/error.h"
#include "ember/infer/quant_io.h"
#include "ember/nn/module_io.h"

namespace ember::serve {

std::unique_ptr<ServedModel> ServedModel::load(const std::string& path, const std::string& op) {
  train::ModelCheckpoint ckpt =
      train::open_model_checkpoint(path, {"sft", "dpo", "ppo", "pretrain"}, op, "--checkpoint", /*allow_quantized=*/true);
  Tokenizer tok = train::load_checkpoint_tokenizer(ckpt);
  auto m = std::unique_ptr<ServedModel>(new ServedModel{std::move(ckpt), std::move(tok), nullptr, nullptr, nullptr, -1});
  if (m->checkpoint.quantization.empty()) {
    m->gpt = std::make_unique<models::GPT>(m->checkpoint.config);
    nn::load_module(*m->gpt, m->checkpoint.model_path);
    m->gpt->eval();
    auto w = infer::runner_weights(*m->gpt);
    w->prepack();  // served weights never change
    m->weights = w;
  } else {
    m->weights = infer::load_runner_weights(m->checkpoint.model_path, m->checkpoint.config);
  }
  m->chat_template = std::make_unique<chat::ChatTemplate>(m->tokenizer);
  if (m->tokenizer.special_tokens().count("<|endoftext|>"))
    m->end_of_text = int64_t(m->tokenizer.special_id("<|endoftext|>"));
  return m;
}

std::vector<int64_t> ServedModel::chat_stop_tokens() const {
  std::vector<int64_t> stops = {chat_template->turn_end_id()};
  if (end_of_text >= 0) stops.push_back(end_of_text);
  return stops;
}

std::vector<int64_t> ServedModel::completion_prompt(const std::string& text) const {
  std::vector<int64_t> ids;
  if (end_of_text >= 0) ids.push_back(end_of_text);
  for (TokenId t : tokenizer.encode_ordinary(text)) ids.push_back(int64_t(t));
  if (ids.empty()) fail("completions", "an empty prompt needs an <|endoftext|> token in the tokenizer to start from");
  return ids;
}

}  // namespace ember::serve

// Opening a model checkpoint for a later stage (see model_checkpoint.h).
#include "ember/train/model_checkpoint.h"

#include <algorithm>
#include <filesystem>

#include "ember/core/error.h"
#include "ember/data/meta.h"
#include "ember/train/checkpoint.h"

namespace ember::train {
namespace fs = std::filesystem;

ModelCheckpoint open_model_checkpoint(const std::string& path, const std::vector<std::string>& kinds,
                                      const std::string& op, const std::string& what, bool allow_quantized) {
  ModelCheckpoint c;
  c.dir = resolve_checkpoint(path);
  c.trainer = read_trainer_json(c.dir);
  c.kind = c.trainer.value("kind", "pretrain");
  if (!kinds.empty() && std::find(kinds.begin(), kinds.end(), c.kind) == kinds.end()) {
    std::string want;
    for (size_t i = 0; i < kinds.size(); ++i) want += (i ? (i + 1 == kinds.size() ? " or " : ", ") : "") + kinds[i];
    fail(op, c.dir, " is a \"", c.kind, "\" checkpoint; ", what, " must be a ", want, " checkpoint");
  }
  if (c.trainer.contains("quantization")) {
    const nlohmann::json& q = c.trainer.at("quantization");
    c.quantization = q.is_object() ? q.value("scheme", std::string("?")) : std::string("?");
    if (!allow_quantized)
      fail(op, c.dir, " holds ", c.quantization,
           "-quantized weights; quantized checkpoints are for inference (serve, chat, eval, sample)");
  }
  if (!c.trainer.contains("config")) fail(op, c.dir, "/trainer.json has no model \"config\"");
  try {
    c.config = models::GPTConfig::from_json(c.trainer.at("config"));
  } catch (const Error& e) {
    fail(op, c.dir, "/trainer.json: bad model config: ", e.what());
  }
  c.model_path = c.dir + "/model.safetensors";
  if (!fs::exists(c.model_path)) fail(op, c.dir, " holds no model.safetensors");
  c.tokenizer_dir = c.dir + "/tokenizer";
  if (!fs::exists(c.tokenizer_dir + "/tokenizer.json"))
    fail(op, c.dir, " holds no tokenizer/ folder (train with --tokenizer so checkpoints carry it)");
  const Tokenizer tok = Tokenizer::load(c.tokenizer_dir);
  if (int64_t(tok.vocab_size()) > c.config.vocab_size)
    fail(op, "the tokenizer in ", c.tokenizer_dir, " has ", tok.vocab_size(), " tokens but the model's vocab_size is ",
         c.config.vocab_size);
  c.tokenizer_fingerprint = data::tokenizer_fingerprint(tok);
  return c;
}

Tokenizer load_checkpoint_tokenizer(const ModelCheckpoint& ckpt) { return Tokenizer::load(ckpt.tokenizer_dir); }

void require_same_tokenizer(const ModelCheckpoint& a, const ModelCheckpoint& b, const std::string& op) {
  if (a.tokenizer_fingerprint != b.tokenizer_fingerprint)
    fail(op, "tokenizer mismatch: ", a.dir, " and ", b.dir,
         " were trained with different tokenizers (fingerprints ", a.tokenizer_fingerprint, " vs ",
         b.tokenizer_fingerprint, "); train both from the same tokenizer");
}

}  // namespace ember::train

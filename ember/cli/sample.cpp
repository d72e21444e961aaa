// `ember sample`: continues a prompt with a pretrained checkpoint (float32 or
// quantized), streaming the text as it is generated, through the inference
// engine (KV cache).
// Sample i uses seed + i, so each continuation is reproducible on its own.
#include <algorithm>
#include <iostream>
#include <optional>

#include "ember/cli/commands.h"
#include "ember/core/error.h"
#include "ember/infer/engine.h"
#include "ember/infer/quant_io.h"
#include "ember/tokenizer/tokenizer.h"
#include "ember/train/checkpoint.h"

namespace ember::cli {
namespace {

struct SampleOptions {
  std::string checkpoint, prompt;
  int64_t max_tokens = 128, num_samples = 1;
  infer::SamplingParams sampling{0.8, 40, 0.95};
  uint64_t seed = 1337;
};

void run_sample(const SampleOptions& o) {
  const std::string dir = train::resolve_checkpoint(o.checkpoint);
  const nlohmann::json trainer = train::read_trainer_json(dir);
  if (!trainer.contains("config")) fail("sample", dir, "/trainer.json has no \"config\" (not a GPT checkpoint?)");
  models::GPTConfig cfg = models::GPTConfig::from_json(trainer.at("config"));
  // Float32 or quantized (`ember quantize`) weights: the engine runs either.
  const auto weights = infer::load_runner_weights(dir + "/model.safetensors", cfg);
  const Tokenizer tok = Tokenizer::load(dir + "/tokenizer");
  const int64_t eot = tok.special_tokens().count("<|endoftext|>") ? int64_t(tok.special_id("<|endoftext|>")) : -1;
  std::vector<int64_t> prompt;
  for (TokenId id : tok.encode(o.prompt, AllowedSpecial::All())) prompt.push_back(int64_t(id));
  if (prompt.empty()) {
    if (eot < 0) fail("sample", "an empty --prompt needs an <|endoftext|> token in the tokenizer to start from");
    prompt.push_back(eot);
  }
  infer::EngineOptions eo;
  eo.max_slots = 1;  // samples stream one after another
  eo.sample_vocab = std::min<int64_t>(cfg.vocab_size, int64_t(tok.vocab_size()));  // never an id without text
  infer::Engine engine(weights, eo);
  const int64_t room = cfg.block_size - int64_t(prompt.size());
  if (room < 1)
    fail("sample", "the prompt has ", prompt.size(), " tokens; the model's context is ", cfg.block_size,
         " (keep the prompt shorter to leave room to generate)");
  for (int64_t i = 0; i < o.num_samples; ++i) {
    if (o.num_samples > 1) std::cout << "--- sample " << i + 1 << " ---\n";
    std::cout << o.prompt << std::flush;
    infer::Request r;
    r.prompt = prompt;
    r.sampling = o.sampling;
    r.max_tokens = o.max_tokens;
    if (eot >= 0) r.stop_tokens = {eot};
    r.seed = o.seed + uint64_t(i);
    infer::FinishReason finish = infer::FinishReason::none;
    r.on_event = [&](const infer::TokenEvent& e) {
      if (e.token >= 0 && !tok.is_special(TokenId(e.token))) std::cout << tok.token_bytes(TokenId(e.token)) << std::flush;
      finish = e.finish;
    };
    engine.submit(std::move(r));
    engine.run_until_idle();
    std::cout << "\n";
    if (finish == infer::FinishReason::length && o.max_tokens > room)
      std::cerr << "(stopped at the model's context of " << cfg.block_size << " tokens)\n";
  }
}

}  // namespace

void register_sample(CLI::App& app) {
  auto o = std::make_shared<SampleOptions>();
  auto* cmd = app.add_subcommand("sample", "Continue a prompt with a pretrained checkpoint");
  cmd->add_option("--checkpoint", o->checkpoint, "Checkpoint folder, or a run folder (its latest checkpoint)")->required();
  cmd->add_option("--prompt", o->prompt, "Text to continue (empty: start a new document)")->capture_default_str();
  cmd->add_option("--max-tokens", o->max_tokens, "Tokens to generate")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--temperature", o->sampling.temperature, "Sampling temperature (0: greedy)")->capture_default_str();
  cmd->add_option("--top-k", o->sampling.top_k, "Keep the k most likely tokens (0: all)")->capture_default_str();
  cmd->add_option("--top-p", o->sampling.top_p, "Nucleus sampling mass (1: off)")->capture_default_str();
  cmd->add_option("--min-p", o->sampling.min_p, "Drop tokens below min_p x the top probability (0: off)")->capture_default_str();
  cmd->add_option("--repetition-penalty", o->sampling.repetition_penalty, "Penalise tokens already seen (1: off)")->capture_default_str();
  cmd->add_option("--presence-penalty", o->sampling.presence_penalty, "OpenAI presence penalty (0: off)")->capture_default_str();
  cmd->add_option("--frequency-penalty", o->sampling.frequency_penalty, "OpenAI frequency penalty (0: off)")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Random seed (same seed, same text)")->capture_default_str();
  cmd->add_option("--num-samples", o->num_samples, "Independent continuations")->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->callback([o] { run_sample(*o); });
}

}  // namespace ember::cli

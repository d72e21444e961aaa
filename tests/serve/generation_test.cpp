// Generations on the real engine with the scripted model (scripted_model.h),
// whose reply to any chat is "OK <script>": stop tokens, stop strings,
// max_tokens, logprobs, cancellation, a vocabulary padded past the tokenizer,
// and the terminal chat loop over it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "ember/chat/template.h"
#include "ember/serve/generation.h"
#include "ember/serve/served_model.h"
#include "ember/serve/terminal_chat.h"
#include "ember/serve/utf8_stream.h"
#include "serve/scripted_model.h"

namespace ember::serve {
namespace {

models::GPT& scripted(models::GPT& model, bool loop) {
  testing::script_model(model, "OK <script>", loop);
  return model;
}

struct Scripted {
  Tokenizer tok = testing::byte_tokenizer();
  chat::ChatTemplate tmpl{tok};
  models::GPT model;
  infer::Engine engine;
  explicit Scripted(bool loop) : model(testing::scripted_config(64)), engine(scripted(model, loop)) {
    engine.start();
  }
  GenerationRequest request(int64_t max_tokens) {
    GenerationRequest g;
    g.prompt = tmpl.render_prompt({{chat::Role::user, "hello"}});
    g.max_tokens = max_tokens;
    g.stop_tokens = {tmpl.turn_end_id()};
    g.seed = 3;
    return g;
  }
};

// Runs a generation to its end; returns (text, finish_reason).
std::pair<std::string, std::string> run(Generation& gen, std::vector<TokenLogprob>* lp = nullptr) {
  std::string text;
  while (true) {
    std::optional<Delta> d = gen.next(std::chrono::milliseconds(2000));
    if (!d) return {text, "timeout"};
    text += d->text;
    if (lp) lp->insert(lp->end(), d->logprobs.begin(), d->logprobs.end());
    if (d->finished) return {text, d->finish_reason};
  }
}

TEST(Generation, ScriptedReplyEndsAtTheTurnEndToken) {
  Scripted s(false);
  Generation gen(s.engine, s.tok, s.request(50));
  std::vector<TokenLogprob> lp;
  EXPECT_EQ(run(gen, &lp), (std::pair<std::string, std::string>{"OK <script>", "stop"}));
  EXPECT_EQ(gen.completion_tokens(), 12);  // 11 bytes and <|im_end|>
  ASSERT_EQ(lp.size(), 11u);               // the stop token is not text
  EXPECT_EQ(lp[0].token, "O");
  EXPECT_GT(lp[0].logprob, -1e-6);
  EXPECT_TRUE(gen.first_token_time().has_value());
}

TEST(Generation, StopStringCutsTheTextAndMaxTokensCapsIt) {
  Scripted s(true);
  GenerationRequest g = s.request(50);
  g.stop_strings = {"ipt", "<s"};
  Generation a(s.engine, s.tok, g);
  EXPECT_EQ(run(a), (std::pair<std::string, std::string>{"OK ", "stop"}));
  Generation b(s.engine, s.tok, s.request(4));
  EXPECT_EQ(run(b), (std::pair<std::string, std::string>{"OK <", "length"}));
  // The loop only ends when the context (64) is full: the last token sampled
  // needs no position of its own, so prompt + reply = 65.
  Generation c(s.engine, s.tok, s.request(1000));
  const auto [text, finish] = run(c);
  EXPECT_EQ(finish, "length");
  EXPECT_EQ(int64_t(text.size()) + c.prompt_tokens(), 65);
}

TEST(Generation, CancelFreesTheSlot) {
  Scripted s(true);
  GenerationRequest g = s.request(1000);
  g.token_delay_ms = 5;
  {
    Generation gen(s.engine, s.tok, g);
    ASSERT_TRUE(gen.next(std::chrono::milliseconds(2000)).has_value());
    gen.cancel();
    EXPECT_EQ(run(gen).second, "cancelled");
  }
  {
    Generation dropped(s.engine, s.tok, g);  // destroyed unfinished: cancelled by the destructor
    ASSERT_TRUE(dropped.next(std::chrono::milliseconds(2000)).has_value());
  }
  for (int i = 0; i < 200 && s.engine.active() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(s.engine.active(), 0);
}

TEST(Generation, RandomBytesAlwaysComeOutAsValidUtf8) {
  // Random weights over a byte vocabulary produce arbitrary byte sequences,
  // most of them not UTF-8: the text must still be valid (U+FFFD instead).
  const Tokenizer tok = testing::byte_tokenizer();
  Generator gen(11);
  models::GPT model(testing::scripted_config(64), &gen);
  infer::Engine engine(model);
  engine.start();
  GenerationRequest g;
  g.prompt = {256};
  g.max_tokens = 60;
  g.seed = 5;
  Generation a(engine, tok, g);
  const auto [text, finish] = run(a);
  EXPECT_EQ(finish, "length");
  EXPECT_EQ(a.completion_tokens(), 60);
  EXPECT_TRUE(is_valid_utf8(text));
  EXPECT_NE(text.find("\xEF\xBF\xBD"), std::string::npos) << "expected some invalid bytes to be replaced";
}

// The scripted model with its vocabulary padded from 259 to 264 and the padded
// id 262 made the likeliest reply to "\n": loaded as `ember serve` loads it,
// the engine samples only ids the tokenizer has, so the reply is the script.
TEST(Generation, PaddedVocabularyIdsAreNeverGenerated) {
  namespace fs = std::filesystem;
  const std::string dir = ::testing::TempDir() + "/ember_padded_vocab_" + std::to_string(::getpid());
  fs::remove_all(dir);
  const Tokenizer tok = testing::byte_tokenizer();
  tok.save(dir + "/tokenizer");
  models::GPTConfig cfg = testing::scripted_config(64);
  cfg.vocab_size = 264;
  models::GPT padded(cfg);
  testing::script_model(padded, "OK <script>", false);
  // state_dict shares the parameters' storage. Chain position 0 ("\n") -> 262, above 'O' (5).
  padded.state_dict().at("lm_head.weight").data<float>()[262 * cfg.n_embd + 0] = 9.0f;
  train::CheckpointSave what{&padded, nullptr, {{"kind", "sft"}, {"step", 0}, {"config", cfg.to_json()}},
                             {{dir + "/tokenizer", "tokenizer"}}};
  train::save_checkpoint(dir, 0, what);
  const auto model = ServedModel::load(dir, "serve");
  EXPECT_EQ(model->sample_vocab(), 259);
  for (bool masked : {false, true}) {
    infer::EngineOptions eo;
    if (masked) eo.sample_vocab = model->sample_vocab();
    infer::Engine engine(model->weights, eo);
    engine.start();
    GenerationRequest g;
    g.prompt = model->chat_template->render_prompt({{chat::Role::user, "hello"}});
    g.max_tokens = 20;
    g.stop_tokens = model->chat_stop_tokens();
    g.sampling.temperature = 0;
    Generation gen(engine, model->tokenizer, g);
    std::vector<TokenLogprob> lp;
    const auto [text, finish] = run(gen, &lp);
    if (masked) {
      EXPECT_EQ(text, "OK <script>");
      EXPECT_EQ(finish, "stop");
    } else {  // the case the mask exists for: the first token is 262, which has no bytes
      ASSERT_FALSE(lp.empty());
      EXPECT_TRUE(lp[0].bytes.empty());
      EXPECT_NE(text, "OK <script>");
    }
    engine.stop();
  }
  fs::remove_all(dir);
}

TEST(TerminalChat, ConversationCommandsAndErrors) {
  namespace fs = std::filesystem;
  const std::string dir = ::testing::TempDir() + "/ember_terminal_chat_" + std::to_string(::getpid());
  fs::remove_all(dir);
  testing::write_scripted_checkpoint(dir, "OK <script>", false, 64);
  const auto model = ServedModel::load(dir, "chat");
  infer::Engine engine(*model->gpt);
  engine.start();
  std::istringstream in("hello\n/temp 0\n/temp hot\n/max 3\nagain\n/bogus\n/system Be brief.\n/help\nthird\n/quit\nnot read\n");
  std::ostringstream out;
  run_terminal_chat(*model, engine, in, out, {});
  EXPECT_EQ(out.str(),
            "OK <script>\n"
            "* temperature 0\n"
            "* error: /temp needs a number in [0, 2], got 'hot'\n"
            "* max tokens 3\n"
            "OK \n"
            "* (reply cut at the token limit; /max N raises it)\n"
            "* error: unknown command /bogus (/help lists them)\n"
            "* system prompt set; new conversation\n"
            "* commands: /reset (new conversation), /system TEXT (set the system prompt and reset),\n"
            "*   /temp X (temperature, 0..2), /top-p X (0 < X <= 1), /max N (reply tokens), /help, /quit\n"
            "OK \n"
            "* (reply cut at the token limit; /max N raises it)\n");
  engine.stop();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ember::serve

// Pretokenizer: PCRE2 (UTF, UCP, invalid-UTF tolerant, JIT) splitting.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "ember/tokenizer/pretokenizer.h"

#include <pcre2.h>

#include <cstdlib>
#include <string>

#include "ember/core/error.h"
#include "ember/tokenizer/builtin_split.h"
#include "ember/tokenizer/char_classes.h"
#include "ember/tokenizer/unicode_compat.h"
#include "ember/tokenizer/utf8.h"

namespace ember {

const char* const kPatternGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const kPatternCl100k =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kPatternO200k =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::string resolve_split_pattern(const std::string& name_or_regex) {
  if (name_or_regex == "gpt2") return kPatternGpt2;
  if (name_or_regex == "cl100k" || name_or_regex == "cl100k_base") return kPatternCl100k;
  if (name_or_regex == "o200k" || name_or_regex == "o200k_base") return kPatternO200k;
  return name_or_regex;
}

namespace {

// Per-thread match state. The match data only needs the whole-match pair, so
// one block serves every pattern; the JIT stack is grown past PCRE2's 32 KiB
// default because look-aheads over long whitespace runs can need more.
struct MatchScratch {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;
  MatchScratch() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
    if (!data || !context || !stack) fail("tokenizer", "out of memory creating PCRE2 match state");
    pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~MatchScratch() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

MatchScratch& scratch() {
  thread_local MatchScratch s;
  return s;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  int n = pcre2_get_error_message(code, buffer, sizeof(buffer));
  return n < 0 ? "PCRE2 error " + std::to_string(code) : std::string(reinterpret_cast<char*>(buffer), n);
}

}  // namespace

struct Pretokenizer::Impl {
  BuiltinPattern builtin = BuiltinPattern::none;  // when set, nothing below is compiled
  pcre2_code* fast = nullptr;   // the pattern as given
  pcre2_code* exact = nullptr;  // rewritten for tiktoken's Unicode semantics; null when identical
  bool fast_jit = false, exact_jit = false;
  ~Impl() {
    pcre2_code_free(fast);
    pcre2_code_free(exact);
  }
};

Pretokenizer::Pretokenizer(std::string pattern, Engine engine)
    : pattern_(std::move(pattern)), impl_(std::make_unique<Impl>()) {
  const char* env = std::getenv("EMBER_SPLIT");
  const std::string choice = env ? env : "";
  if (!choice.empty() && choice != "builtin" && choice != "pcre2")
    fail("tokenizer", "EMBER_SPLIT=", choice, " is not a splitter: use builtin (the default) or pcre2");
  if (engine == Engine::automatic && choice != "pcre2") {
    impl_->builtin = builtin_pattern_of(pattern_);
    if (impl_->builtin != BuiltinPattern::none) {
      char_classes();  // built here (about 20 ms, once per process), not in the first split
      return;
    }
  }
  // UCP makes \s, \d, \w and case folding Unicode-aware, as in Rust's regex
  // (which tiktoken uses); MATCH_INVALID_UTF lets arbitrary bytes through.
  const uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF;
  auto compile = [&](const std::string& text, int& error, PCRE2_SIZE& offset) {
    return pcre2_compile(reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), options, &error, &offset, nullptr);
  };
  int error = 0;
  PCRE2_SIZE offset = 0;
  impl_->fast = compile(pattern_, error, offset);
  if (!impl_->fast) {
    fail("tokenizer", "split pattern does not compile at offset ", offset, ": ", pcre2_message(error),
         " (pattern: ", pattern_, ")");
  }
  impl_->fast_jit = pcre2_jit_compile(impl_->fast, PCRE2_JIT_COMPLETE) == 0;
  const std::string adapted = adapt_pattern_for_pcre2(pattern_);
  if (adapted != pattern_) {
    impl_->exact = compile(adapted, error, offset);
    if (!impl_->exact) {
      fail("tokenizer", "split pattern does not compile after Unicode adaptation, at offset ", offset, ": ",
           pcre2_message(error), " (pattern: ", adapted, ")");
    }
    impl_->exact_jit = pcre2_jit_compile(impl_->exact, PCRE2_JIT_COMPLETE) == 0;
  }
}

Pretokenizer::~Pretokenizer() = default;
Pretokenizer::Pretokenizer(Pretokenizer&&) noexcept = default;
Pretokenizer& Pretokenizer::operator=(Pretokenizer&&) noexcept = default;

void Pretokenizer::split(std::string_view text, std::vector<std::string_view>& out) const {
  split_some(text, 0, out, static_cast<size_t>(-1), needs_exact(text));
}

bool Pretokenizer::needs_exact(std::string_view text) const {
  return impl_->exact != nullptr && has_newer_code_points(text);
}

bool Pretokenizer::builtin() const { return impl_->builtin != BuiltinPattern::none; }

size_t Pretokenizer::split_some(std::string_view text, size_t start, std::vector<std::string_view>& out,
                                size_t max_pieces, bool exact) const {
  if (impl_->builtin != BuiltinPattern::none) return builtin_split_some(impl_->builtin, text, start, out, max_pieces);
  MatchScratch& s = scratch();
  const bool use_exact = exact && impl_->exact != nullptr;
  pcre2_code* code = use_exact ? impl_->exact : impl_->fast;
  const bool jit = use_exact ? impl_->exact_jit : impl_->fast_jit;
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const size_t n = text.size();
  const size_t limit = piece_limit(out.size(), max_pieces);
  size_t pos = start;      // where the next search starts
  size_t covered = start;  // end of the last emitted piece
  while (pos < n) {
    if (out.size() >= limit) return covered;
    int rc = jit ? pcre2_jit_match(code, subject, n, pos, 0, s.data, s.context)
                 : pcre2_match(code, subject, n, pos, 0, s.data, s.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) fail("tokenizer", "regex match failed at byte ", pos, ": ", pcre2_message(rc));
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(s.data);
    size_t begin = ov[0], end = ov[1];
    if (end == begin) {
      // An empty match yields no token; step over one character and go on.
      pos = begin + 1;
      while (pos < n && utf8_continuation(static_cast<unsigned char>(text[pos]))) ++pos;
      continue;
    }
    // Bytes between matches are invalid UTF-8 that no pattern item accepts:
    // they still become a piece so that nothing is dropped.
    if (begin > covered) out.push_back(text.substr(covered, begin - covered));
    out.push_back(text.substr(begin, end - begin));
    covered = pos = end;
  }
  if (covered < n) out.push_back(text.substr(covered));
  return n;
}

}  // namespace ember

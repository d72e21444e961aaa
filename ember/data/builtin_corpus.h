// The built-in default corpus: simple structured English text, generated.
//
// So that tokenizer training and pretraining run on a fresh machine with
// nothing downloaded, ember writes its own corpus: short documents about a
// small world (people, places, animals, objects, colours), built from
// templates that stay true to themselves: counting stories whose totals add
// up, arithmetic stated in words with correct answers, comparisons, daily
// routines, dialogues, and short stories. A model that learns it shows it by
// continuing "Seven plus five is" with "twelve". A seeded world of 4000
// towns and 4000 families (names built from syllables, each repeated within
// its paragraph), town facts with numbers in digits, and digit arithmetic
// widen the vocabulary: 5 MB of it trains a full 8192-token BPE vocabulary
// (`ember tokenizer train --vocab-size 8192`) without running out of pairs.
//
// Deterministic: the same (bytes, seed) gives the same text on every machine
// (own splitmix64 generator; no std:: distributions, whose output differs
// between standard libraries). Documents end with "\n<|endoftext|>\n", which
// `ember data prepare` splits on and `ember tokenizer train` cuts out.
#pragma once

#include <cstdint>
#include <string>

namespace ember::data {

// Whole documents until at least `bytes` bytes (one document past it at most).
std::string builtin_corpus(uint64_t bytes, uint64_t seed = 1);

// "zero" ... "nine hundred and ninety-nine"; throws for n > 999.
std::string number_words(int n);

}  // namespace ember::data

// A small tokenizer trained on the tiny curriculum, shared by the chat tests.
#pragma once

#include "ember/chat/curriculum.h"
#include "ember/tokenizer/train.h"

namespace ember::chat::testing {

inline const Tokenizer& curriculum_tokenizer() {
  static const Tokenizer tok = [] {
    const World w = make_world(curriculum_preset("tiny"), 7);
    std::string text = curriculum_pretraining_text(w, 300, 7);
    for (const auto& c : curriculum_conversations(w, 200, 7, 0))
      for (const auto& m : c) text += m.content + "\n";
    BpeTrainOptions o;
    o.vocab_size = 384;
    return train_bpe({text}, o);
  }();
  return tok;
}

}  // namespace ember::chat::testing

// `ember data prepare` (the library function the CLI calls): documents,
// the EOT-separated token stream, the deterministic split, shards and
// meta.json, and bad input that leaves nothing behind.
#include <gtest/gtest.h>

#include <omp.h>

#include "data/data_test_util.h"
#include "ember/data/loader.h"
#include "ember/data/prepare.h"

namespace ember::data {
namespace {

namespace fs = std::filesystem;
using testing::error_of;
using testing::small_tokenizer;
using testing::TempDir;

std::vector<uint32_t> split_tokens(const std::string& dir, const DataMeta& meta, const std::string& split) {
  std::vector<uint32_t> all;
  for (const auto& sh : meta.split(split, dir).shards) {
    TokenShard s((fs::path(dir) / sh.file).string());
    std::vector<uint32_t> part(s.size());
    s.read(0, part);
    all.insert(all.end(), part.begin(), part.end());
  }
  return all;
}

TEST(DataPrepare, SplitDocuments) {
  using V = std::vector<std::string_view>;
  EXPECT_EQ(split_documents("a\n\nb\n", false), (V{"a\n\nb"}));
  EXPECT_EQ(split_documents("a\n\nb\n", true), (V{"a", "b"}));
  EXPECT_EQ(split_documents("one<|endoftext|>\ntwo\n<|endoftext|><|endoftext|>  \n", false), (V{"one", "two"}));
  EXPECT_EQ(split_documents("p1 l1\np1 l2\n \t \n\n\np2\n", true), (V{"p1 l1\np1 l2", "p2"}));
  EXPECT_TRUE(split_documents("\n\n  \n", true).empty());
}

TEST(DataPrepare, StreamIsEotThenEachDocumentInOrder) {
  TempDir dir("prep_stream");
  testing::write_text(dir / "a.txt", "The first document.\n");
  testing::write_text(dir / "b.txt", "Second one<|endoftext|>Third, after a literal EOT.\n\n");
  PrepareOptions o;
  o.inputs = {dir / "a.txt", dir / "b.txt"};
  o.out = dir / "data";
  o.val_fraction = 0;
  o.shard_tokens = 7;
  const DataMeta meta = prepare_data(small_tokenizer(), o);
  const Tokenizer& tok = small_tokenizer();
  const uint32_t eot = tok.special_id("<|endoftext|>");
  std::vector<uint32_t> want;
  for (const char* doc : {"The first document.", "Second one", "Third, after a literal EOT."}) {
    want.push_back(eot);
    for (TokenId id : tok.encode_ordinary(doc)) want.push_back(id);
  }
  EXPECT_EQ(split_tokens(o.out, meta, "train"), want);
  const SplitInfo& train = meta.split("train", o.out);
  EXPECT_EQ(train.documents, 3u);
  EXPECT_EQ(train.tokens, want.size());
  EXPECT_EQ(train.shards.size(), (want.size() + 6) / 7);
  EXPECT_EQ(train.shards[0].file, "train_00000.bin");
  EXPECT_EQ(train.shards[0].tokens, 7u);
  EXPECT_EQ(meta.split("val", o.out).tokens, 0u);
  // meta.json on disk says the same.
  const DataMeta back = read_meta(o.out);
  EXPECT_EQ(back.vocab_size, 400u);
  EXPECT_EQ(back.eot_id, eot);
  EXPECT_EQ(back.dtype, TokenDType::u16);
  EXPECT_EQ(back.fingerprint, tokenizer_fingerprint(tok));
  EXPECT_EQ(back.split("train", o.out).tokens, want.size());
  EXPECT_EQ(back.split("train", o.out).shards.size(), train.shards.size());
  // Only the shards and meta.json: no temporaries.
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(o.out)) files += e.is_regular_file();
  EXPECT_EQ(files, train.shards.size() + 1);
  EXPECT_FALSE(fs::exists(o.out + ".partial-" + std::to_string(::getpid())));
}

TEST(DataPrepare, SplitIsDeterministicAcrossThreadsAndInputOrder) {
  TempDir dir("prep_det");
  const std::string corpus = builtin_corpus(200'000, 11);
  // The same documents in two files, in two orders.
  const size_t cut = corpus.find("<|endoftext|>", corpus.size() / 2) + 14;
  testing::write_text(dir / "a.txt", corpus.substr(0, cut));
  testing::write_text(dir / "b.txt", corpus.substr(cut));
  PrepareOptions o;
  o.val_fraction = 0.2;
  o.batch_bytes = 10'000;
  o.inputs = {dir / "a.txt", dir / "b.txt"};
  o.out = dir / "d1";
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const DataMeta m1 = prepare_data(small_tokenizer(), o);
  omp_set_num_threads(std::max(3, threads));
  o.out = dir / "d2";
  const DataMeta m2 = prepare_data(small_tokenizer(), o);
  o.inputs = {dir / "b.txt", dir / "a.txt"};
  o.out = dir / "d3";
  const DataMeta m3 = prepare_data(small_tokenizer(), o);
  omp_set_num_threads(threads);
  EXPECT_EQ(split_tokens(dir / "d1", m1, "train"), split_tokens(dir / "d2", m2, "train"));
  EXPECT_EQ(split_tokens(dir / "d1", m1, "val"), split_tokens(dir / "d2", m2, "val"));
  // Input order changes the stream's order but not which documents are val.
  for (const char* s : {"train", "val"}) {
    EXPECT_EQ(m1.split(s, "").documents, m3.split(s, "").documents) << s;
    EXPECT_EQ(m1.split(s, "").tokens, m3.split(s, "").tokens) << s;
  }
  const double share = double(m1.split("val", "").documents) /
                       double(m1.split("val", "").documents + m1.split("train", "").documents);
  EXPECT_GT(share, 0.12);
  EXPECT_LT(share, 0.28);
}

TEST(DataPrepare, TinyInputsStillGetBothSplits) {
  TempDir dir("prep_tiny");
  testing::write_text(dir / "a.txt", "alpha");
  testing::write_text(dir / "b.txt", "beta");
  PrepareOptions o;
  o.inputs = {dir / "a.txt", dir / "b.txt"};
  o.out = dir / "data";
  o.val_fraction = 0.01;
  const DataMeta m = prepare_data(small_tokenizer(), o);
  EXPECT_EQ(m.split("train", "").documents, 1u);
  EXPECT_EQ(m.split("val", "").documents, 1u);
}

TEST(DataPrepare, BadInputIsAOneLineErrorAndLeavesNothing) {
  TempDir dir("prep_bad");
  testing::write_text(dir / "a.txt", "some text\n");
  testing::write_text(dir / "empty.txt", "");
  auto attempt = [&](PrepareOptions o, const Tokenizer& tok = small_tokenizer()) {
    if (o.out.empty()) o.out = dir / "out";
    std::string msg = error_of([&] { prepare_data(tok, o); });
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_FALSE(fs::exists(dir / "out"));
    EXPECT_FALSE(fs::exists(dir / ("out.partial-" + std::to_string(::getpid()))));
    return msg;
  };
  PrepareOptions o;
  o.inputs = {dir / "a.txt", dir / "missing.txt"};
  EXPECT_NE(attempt(o).find("missing.txt: no such input file"), std::string::npos);
  o.inputs = {dir / "empty.txt"};
  EXPECT_NE(attempt(o).find("the input files hold no text"), std::string::npos);
  o.inputs = {dir / "a.txt"};
  EXPECT_NE(attempt(o).find("only one document"), std::string::npos);
  o.val_fraction = 1.0;
  EXPECT_NE(attempt(o).find("--val-fraction 1 is not in [0, 1)"), std::string::npos);
  o.val_fraction = 0;
  o.inputs = {};
  EXPECT_NE(attempt(o).find("no input files"), std::string::npos);
  o.inputs = {dir / "a.txt"};
  BpeTrainOptions t;
  t.vocab_size = 300;
  t.special_tokens = {"<|im_start|>"};
  EXPECT_NE(attempt(o, train_bpe({"abc abc"}, t)).find("has no <|endoftext|> special token"), std::string::npos);
}

TEST(DataPrepare, ExistingOutputIsNotOverwrittenUnlessAsked) {
  TempDir dir("prep_exist");
  testing::write_text(dir / "a.txt", "first text\n");
  testing::write_text(dir / "b.txt", "second text, longer than the first\n");
  fs::create_directories(dir / "out");
  testing::write_text(dir / "out/keep.txt", "precious");
  PrepareOptions o;
  o.inputs = {dir / "a.txt"};
  o.out = dir / "out";
  o.val_fraction = 0;
  std::string msg = error_of([&] { prepare_data(small_tokenizer(), o); });
  EXPECT_NE(msg.find("folder exists and is not empty; remove it or pass --overwrite"), std::string::npos) << msg;
  EXPECT_TRUE(fs::exists(dir / "out/keep.txt"));
  o.overwrite = true;
  prepare_data(small_tokenizer(), o);
  EXPECT_FALSE(fs::exists(dir / "out/keep.txt"));
  EXPECT_EQ(read_meta(o.out).split("train", "").documents, 1u);
  // A failing --overwrite run leaves the previous data folder as it was.
  o.inputs = {dir / "nope.txt"};
  EXPECT_THROW(prepare_data(small_tokenizer(), o), Error);
  EXPECT_EQ(read_meta(o.out).split("train", "").documents, 1u);
}

TEST(DataPrepare, MetaErrorsNameTheFile) {
  TempDir dir("prep_meta");
  std::string msg = error_of([&] { read_meta(dir.path.string()); });
  EXPECT_NE(msg.find("meta.json: missing"), std::string::npos) << msg;
  testing::write_text(dir / "meta.json", "{\"format\": \"ember-tokens\", \"version\": 1}");
  msg = error_of([&] { read_meta(dir.path.string()); });
  EXPECT_NE(msg.find(dir / "meta.json"), std::string::npos) << msg;
  testing::write_text(dir / "meta.json", "not json");
  EXPECT_THROW(read_meta(dir.path.string()), Error);
}

}  // namespace
}  // namespace ember::data

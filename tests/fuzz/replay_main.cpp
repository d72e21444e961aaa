// Regression replay of the fuzz corpora in the normal (GCC) build: links every
// tests/fuzz/*_fuzz.cpp target (see fuzz_target.h) and feeds each file of the
// given corpus directories to the named target, as libFuzzer would when it
// re-runs a corpus. CTest runs it once per target (label `fuzz`), so inputs
// that once crashed a parser, committed under tests/fuzz/corpus/<target>/,
// are checked on every test run without clang. A crash, sanitizer report or
// abort() in a target fails the test; so does an empty or missing corpus.
//
//   fuzz_replay <target> <file-or-dir>...
//   fuzz_replay --list
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "fuzz/fuzz_target.h"

namespace ember::fuzz {

static std::map<std::string, EntryPoint>& targets() {
  static std::map<std::string, EntryPoint> table;
  return table;
}

bool register_target(const char* name, EntryPoint entry) {
  targets()[name] = entry;
  return true;
}

}  // namespace ember::fuzz

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  const auto& table = ember::fuzz::targets();
  if (argc == 2 && std::string(argv[1]) == "--list") {
    for (const auto& [name, entry] : table) std::printf("%s\n", name.c_str());
    return 0;
  }
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s <target> <file-or-dir>...  |  %s --list\n", argv[0], argv[0]);
    return 2;
  }
  const auto it = table.find(argv[1]);
  if (it == table.end()) {
    std::fprintf(stderr, "fuzz_replay: no target named '%s' (see --list)\n", argv[1]);
    return 2;
  }
  std::vector<fs::path> files;
  for (int i = 2; i < argc; ++i) {
    std::error_code ec;
    if (fs::is_directory(argv[i], ec)) {
      for (const auto& e : fs::directory_iterator(argv[i]))
        if (e.is_regular_file()) files.push_back(e.path());
    } else if (fs::is_regular_file(argv[i], ec)) {
      files.push_back(argv[i]);
    } else {
      std::fprintf(stderr, "fuzz_replay: %s: no such file or directory\n", argv[i]);
      return 2;
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "fuzz_replay: no inputs for target '%s'\n", argv[1]);
    return 2;
  }
  std::sort(files.begin(), files.end());  // a stable order makes a failure reproducible
  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      std::fprintf(stderr, "fuzz_replay: %s: cannot read\n", f.c_str());
      return 2;
    }
    std::fprintf(stderr, "%s\n", f.c_str());  // the last line names the input that crashed
    it->second(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  std::printf("fuzz_replay %s: %zu inputs, no failures\n", argv[1], files.size());
  return 0;
}

// The web chat page (ember/serve/web/*), compiled into the binary so that
// `ember serve` stands alone: CMake (ember/serve/embed_web.cmake) turns each
// file into a byte array at build time; this is the lookup over them.
#pragma once

#include <string>
#include <string_view>

namespace ember::serve {

struct WebAsset {
  std::string_view body;
  std::string content_type;
};

// The asset served at URL `path` ("/" is index.html); false when there is none.
bool find_web_asset(std::string_view path, WebAsset& out);

// Defined in the generated web_assets_data.cpp: the bytes of ember/serve/web/<name>.
struct EmbeddedFile {
  const char* name;
  const unsigned char* data;
  unsigned long size;
};
extern const EmbeddedFile kEmbeddedWebFiles[];
extern const unsigned long kEmbeddedWebFileCount;

}  // namespace ember::serve

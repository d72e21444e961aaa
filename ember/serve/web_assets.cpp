// Lookup of the embedded web page files (see web_assets.h).
#include "ember/serve/web_assets.h"

namespace ember::serve {
namespace {

std::string content_type_of(std::string_view name) {
  auto ends = [&](std::string_view ext) {
    return name.size() >= ext.size() && name.substr(name.size() - ext.size()) == ext;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

}  // namespace

bool find_web_asset(std::string_view path, WebAsset& out) {
  if (path == "/") path = "/index.html";
  if (path.empty() || path[0] != '/') return false;
  path.remove_prefix(1);
  for (unsigned long i = 0; i < kEmbeddedWebFileCount; ++i) {
    const EmbeddedFile& f = kEmbeddedWebFiles[i];
    if (path == f.name) {
      out.body = std::string_view(reinterpret_cast<const char*>(f.data), f.size);
      out.content_type = content_type_of(f.name);
      return true;
    }
  }
  return false;
}

}  // namespace ember::serve

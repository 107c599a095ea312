// serve/assets.h — the dashboard's files, compiled into the binary.
//
// The table is generated at build time (cmake/EmbedAssets.cmake) from
// core/src/serve/web and the npm packages it uses, so `reglab serve` needs
// no files beside it and no network.
#pragma once

#include <cstddef>
#include <string_view>

namespace reglab::serve {

struct Asset {
  std::string_view path;          // "/", "/app.js", "/uplot.min.js", ...
  std::string_view content_type;  // "text/html; charset=utf-8", ...
  std::string_view data;
};

// nullptr when no asset has that path.
const Asset* find_asset(std::string_view path);

}  // namespace reglab::serve

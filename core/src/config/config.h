// config/config.h — configuration trees with source positions.
//
// A configuration is a JSON object tree (nlohmann::json, objects ordered by
// key, so dumping it is canonical) plus a SourceMap that remembers where each
// dotted key was written (file, line, column), so every error can point at
// the place a person has to edit. No torch in this module.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace reglab::config {

using Json = nlohmann::json;

struct SourceLocation {
  std::string file;  // empty when the value did not come from a file (a default, --set)
  int line = 0;
  int column = 0;
  std::string str() const;  // "file:line:column", "file", or "<command line>"
};

// dotted key ("optim.lr", "sweep.grid.optim.lr") -> where it was written.
using SourceMap = std::map<std::string, SourceLocation>;

// One problem in a configuration, attached to a key.
struct Issue {
  SourceLocation where;
  std::string key;
  std::string message;     // "expected a float, got string \"abc\""
  std::string suggestion;  // nearest valid key, or empty
  std::string str() const; // "file:line:col: key 'k': message (did you mean 'x'?)"
};

// Thrown for invalid configurations; what() lists every issue, one per line.
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<Issue> issues);
  const std::vector<Issue>& issues() const { return issues_; }

 private:
  std::vector<Issue> issues_;
};

// Parse a TOML file into a tree and its source map. A top-level
// `extends = "base.toml"` (relative to the file) is loaded first and the file
// is merged over it (tables merge recursively, everything else replaces);
// extends chains are followed and cycles reported. TOML syntax errors become a
// ConfigError with the file, line and column toml++ reports.
struct Document {
  Json tree;
  SourceMap locations;
  std::string text;  // the file's own text (not its bases)
  std::filesystem::path path;
};
Document load_toml_file(const std::filesystem::path& path);
Document parse_toml_string(const std::string& text, const std::string& file_name);

// Merge `over` into `base` (objects recursively, other values replace).
void merge_into(Json& base, const Json& over);

// Source positions after merging: `over` (a value whose positions are in
// `over_where` under the dotted key `from`) was merged into a tree at `to`.
// Tables merge, so keys the overlay does not mention keep their old
// positions; any other value replaces the old one with all its elements.
// ("" names the root; array elements are keyed "list.0", "list.1", ...)
void overlay_locations(SourceMap& where, const Json& over, const SourceMap& over_where,
                       const std::string& from, const std::string& to);

// Where `key` was written, or else the closest enclosing table that was
// written somewhere, or else the file (the "" entry); an empty location
// ("<command line>") when the map knows nothing.
SourceLocation locate(const SourceMap& where, const std::string& key);

// Dotted-key access. get returns nullptr when absent.
const Json* get_path(const Json& tree, const std::string& dotted);
void set_path(Json& tree, const std::string& dotted, Json value);
bool erase_path(Json& tree, const std::string& dotted);

// Flatten to dotted keys (leaves are non-object values; arrays are leaves).
std::map<std::string, Json> flatten(const Json& tree);

// Parse a --set value the way TOML would read the right-hand side of
// `key = value` ("0.1" -> float, "true" -> bool, "[1,2]" -> array,
// "\"x\"" or a bare word -> string).
Json parse_cli_value(const std::string& text);

}  // namespace reglab::config

// config/toml_load.cpp — TOML text to configuration trees, with positions and `extends`.
//
// toml++ keeps the source region of every node; we copy each one into the
// SourceMap under its dotted key (array elements as "list.0", ...), so every
// later error can point at the exact line and column the user wrote.
#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "config/config.h"
#include "util/util.h"

static_assert(TOML_EXCEPTIONS, "reglab reads TOML with toml++ exceptions enabled");

namespace reglab::config {

namespace {

namespace fs = std::filesystem;

std::string join_key(const std::string& prefix, const std::string& part) {
  return prefix.empty() ? part : prefix + "." + part;
}

SourceLocation location_of(const toml::node& node, const std::string& file) {
  const toml::source_region& src = node.source();
  return SourceLocation{file, static_cast<int>(src.begin.line), static_cast<int>(src.begin.column)};
}

// Dates and times have no JSON type; they keep their TOML spelling.
template <class T>
std::string streamed(const T& value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

Json to_json(const toml::node& node, const std::string& key, const std::string& file, SourceMap* where) {
  if (where && !key.empty()) (*where)[key] = location_of(node, file);
  switch (node.type()) {
    case toml::node_type::table: {
      Json out = Json::object();
      for (auto&& [k, v] : *node.as_table()) {
        std::string name(k.str());
        out[name] = to_json(v, join_key(key, name), file, where);
      }
      return out;
    }
    case toml::node_type::array: {
      Json out = Json::array();
      const toml::array& arr = *node.as_array();
      for (std::size_t i = 0; i < arr.size(); ++i) {
        out.push_back(to_json(arr[i], join_key(key, std::to_string(i)), file, where));
      }
      return out;
    }
    case toml::node_type::string:
      return node.as_string()->get();
    case toml::node_type::integer:
      return node.as_integer()->get();
    case toml::node_type::floating_point:
      return node.as_floating_point()->get();
    case toml::node_type::boolean:
      return node.as_boolean()->get();
    case toml::node_type::date:
      return streamed(*node.as_date());
    case toml::node_type::time:
      return streamed(*node.as_time());
    case toml::node_type::date_time:
      return streamed(*node.as_date_time());
    default:
      return nullptr;
  }
}

Issue syntax_issue(const toml::parse_error& err, const std::string& file) {
  const toml::source_region& src = err.source();
  return Issue{SourceLocation{file, static_cast<int>(src.begin.line), static_cast<int>(src.begin.column)}, "",
               "TOML syntax error: " + std::string(err.description()), ""};
}

Document parse_one(const std::string& text, const std::string& file) {
  Document doc;
  doc.text = text;
  doc.path = file;
  doc.locations[""] = SourceLocation{file, 0, 0};
  try {
    toml::table table = toml::parse(std::string_view(text), std::string_view(file));
    doc.tree = to_json(table, "", file, &doc.locations);
  } catch (const toml::parse_error& err) {
    throw ConfigError({syntax_issue(err, file)});
  }
  return doc;
}

fs::path identity(const fs::path& path) {
  std::error_code ec;
  fs::path canonical = fs::weakly_canonical(path, ec);
  return ec ? fs::absolute(path).lexically_normal() : canonical;
}

// `chain` holds the identities of the files that (transitively) extend this one.
Document load_with_bases(const std::string& text, const fs::path& path, std::vector<fs::path> chain) {
  const std::string file = path.string();
  Document doc = parse_one(text, file);
  chain.push_back(identity(path));

  const Json* extends = get_path(doc.tree, "extends");
  if (!doc.tree.is_object() || extends == nullptr) return doc;

  const SourceLocation at = doc.locations.count("extends") ? doc.locations.at("extends") : SourceLocation{file};
  if (!extends->is_string() || extends->get<std::string>().empty()) {
    throw ConfigError({Issue{at, "extends", "expected the path of a base TOML file (a string), got " + extends->dump(),
                             ""}});
  }
  const fs::path base_path = (path.parent_path() / extends->get<std::string>()).lexically_normal();
  const fs::path base_id = identity(base_path);
  if (std::find(chain.begin(), chain.end(), base_id) != chain.end()) {
    std::vector<std::string> names;
    for (const fs::path& p : chain) names.push_back(p.filename().string());
    names.push_back(base_id.filename().string());
    throw ConfigError({Issue{at, "extends", "extends cycle: " + util::join(names, " -> "), ""}});
  }
  std::string base_text;
  try {
    base_text = util::read_file(base_path);
  } catch (const std::exception& err) {
    throw ConfigError({Issue{at, "extends", "cannot read base file '" + base_path.string() + "': " + err.what(), ""}});
  }
  Document base = load_with_bases(base_text, base_path, chain);

  erase_path(doc.tree, "extends");
  doc.locations.erase("extends");
  Json merged = std::move(base.tree);
  merge_into(merged, doc.tree);
  SourceMap where = std::move(base.locations);
  overlay_locations(where, doc.tree, doc.locations, "", "");
  doc.tree = std::move(merged);
  doc.locations = std::move(where);
  return doc;
}

}  // namespace

Document load_toml_file(const std::filesystem::path& path) {
  // Said plainly, since this is the first thing a mistyped path meets.
  auto fail = [&](const char* why) { return ConfigError({Issue{SourceLocation{path.string()}, "", why, ""}}); };
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw fail("cannot read file: it does not exist");
  if (std::filesystem::is_directory(path, ec)) throw fail("cannot read file: it is a folder, not a TOML file");
  std::string text;
  try {
    text = util::read_file(path);
  } catch (const std::exception&) {
    throw fail("cannot read file: permission denied or an I/O error");
  }
  return load_with_bases(text, path, {});
}

Document parse_toml_string(const std::string& text, const std::string& file_name) {
  return load_with_bases(text, std::filesystem::path(file_name), {});
}

Json parse_cli_value(const std::string& text) {
  const std::string value = util::trim(text);
  if (value.empty()) throw std::invalid_argument("empty value (write \"\" for an empty string)");
  try {
    const std::string line = "v = " + value;
    toml::table table = toml::parse(std::string_view(line), std::string_view("<command line>"));
    return to_json(*table.get("v"), "", "", nullptr);
  } catch (const toml::parse_error& err) {
    // A bare word is a string (--set optim.schedule=cosine); anything that
    // starts like a quoted string, list or table must be valid TOML.
    const char first = value.front();
    if (first == '"' || first == '\'' || first == '[' || first == '{') {
      throw std::invalid_argument("not a valid TOML value: " + std::string(err.description()));
    }
    return value;
  }
}

}  // namespace reglab::config

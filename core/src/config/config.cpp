// config/config.cpp — issues, errors and dotted-key helpers on configuration trees.
#include "config/config.h"

#include "util/util.h"

namespace reglab::config {

std::string SourceLocation::str() const {
  // An empty file means the value was typed on the command line (--set);
  // defaults never produce issues, so they need no name of their own.
  if (file.empty()) return "<command line>";
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

std::string Issue::str() const {
  std::string out = where.str() + ": ";
  if (!key.empty()) out += "key '" + key + "': ";
  out += message;
  if (!suggestion.empty()) out += " (did you mean '" + suggestion + "'?)";
  return out;
}

namespace {
std::string describe_all(const std::vector<Issue>& issues) {
  if (issues.empty()) return "invalid configuration";
  std::vector<std::string> lines;
  lines.reserve(issues.size());
  for (const Issue& issue : issues) lines.push_back(issue.str());
  return util::join(lines, "\n");
}
}  // namespace

ConfigError::ConfigError(std::vector<Issue> issues)
    : std::runtime_error(describe_all(issues)), issues_(std::move(issues)) {}

void merge_into(Json& base, const Json& over) {
  if (!base.is_object() || !over.is_object()) {
    base = over;
    return;
  }
  for (auto it = over.begin(); it != over.end(); ++it) {
    auto found = base.find(it.key());
    if (found != base.end() && found->is_object() && it->is_object()) {
      merge_into(*found, *it);
    } else {
      base[it.key()] = *it;
    }
  }
}

const Json* get_path(const Json& tree, const std::string& dotted) {
  if (dotted.empty()) return &tree;
  const Json* node = &tree;
  for (const std::string& part : util::split(dotted, '.')) {
    if (!node->is_object()) return nullptr;
    auto it = node->find(part);
    if (it == node->end()) return nullptr;
    node = &*it;
  }
  return node;
}

void set_path(Json& tree, const std::string& dotted, Json value) {
  if (dotted.empty()) {
    tree = std::move(value);
    return;
  }
  Json* node = &tree;
  for (const std::string& part : util::split(dotted, '.')) {
    if (!node->is_object()) *node = Json::object();
    node = &(*node)[part];
  }
  *node = std::move(value);
}

bool erase_path(Json& tree, const std::string& dotted) {
  std::vector<std::string> parts = util::split(dotted, '.');
  Json* node = &tree;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    if (!node->is_object()) return false;
    auto it = node->find(parts[i]);
    if (it == node->end()) return false;
    node = &*it;
  }
  if (!node->is_object()) return false;
  return node->erase(parts.back()) > 0;
}

namespace {
std::string join_key(const std::string& prefix, const std::string& part) {
  return prefix.empty() ? part : prefix + "." + part;
}

void flatten_into(const Json& node, const std::string& prefix, std::map<std::string, Json>& out) {
  if (!node.is_object()) {
    out[prefix] = node;
    return;
  }
  for (auto it = node.begin(); it != node.end(); ++it) flatten_into(*it, join_key(prefix, it.key()), out);
}

void erase_below(SourceMap& where, const std::string& key) {
  const std::string prefix = key.empty() ? "" : key + ".";
  for (auto it = where.lower_bound(prefix); it != where.end() && util::starts_with(it->first, prefix);) {
    if (it->first.empty()) {
      ++it;
      continue;
    }
    it = where.erase(it);
  }
}

void copy_below(SourceMap& where, const SourceMap& from_where, const std::string& from, const std::string& to) {
  const std::string prefix = from + ".";
  for (auto it = from_where.lower_bound(prefix); it != from_where.end() && util::starts_with(it->first, prefix);
       ++it) {
    where[to + it->first.substr(from.size())] = it->second;
  }
}
}  // namespace

SourceLocation locate(const SourceMap& where, const std::string& key) {
  std::string k = key;
  while (true) {
    if (auto it = where.find(k); it != where.end()) return it->second;
    if (k.empty()) return SourceLocation{};
    std::size_t dot = k.rfind('.');
    k = dot == std::string::npos ? "" : k.substr(0, dot);
  }
}

std::map<std::string, Json> flatten(const Json& tree) {
  std::map<std::string, Json> out;
  if (tree.is_object()) flatten_into(tree, "", out);
  return out;
}

void overlay_locations(SourceMap& where, const Json& over, const SourceMap& over_where, const std::string& from,
                       const std::string& to) {
  if (auto it = over_where.find(from); it != over_where.end() && !(to.empty() && !from.empty())) {
    where[to] = it->second;
  }
  if (over.is_object()) {
    // Tables merge: keys the overlay does not mention keep their old place.
    for (auto it = over.begin(); it != over.end(); ++it) {
      overlay_locations(where, *it, over_where, join_key(from, it.key()), join_key(to, it.key()));
    }
    return;
  }
  // Anything else replaces the old value wholesale, including its elements.
  erase_below(where, to);
  copy_below(where, over_where, from, to);
}

}  // namespace reglab::config

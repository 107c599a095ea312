// plugins/loader.h — finding, checking and loading method plugins.
//
// Discovery order: the build's plugin folder, the install folder
// (<prefix>/lib/reglab/plugins next to the running binary), then every folder
// in REGLAB_PLUGIN_PATH (':'-separated). Files named libreglab_*.so are
// candidates. The build's folder is searched only by a binary that runs from
// the build tree (an installed reglab uses its install's plugins). The first
// plugin of a given name wins; later ones of the same name (a second copy on
// REGLAB_PLUGIN_PATH, say) are reported as shadowed, not as failures.
//
// Loading reads the plain-data PluginInfo first and checks the API version
// and ABI fingerprint against the core's before calling anything else; a
// mismatch produces one message listing every differing field with both
// values. Libraries are never unloaded (see reglab/plugin.h). Thread-compatible.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "reglab/plugin.h"

namespace reglab::plugins {

// A plugin that could not be loaded, or a method that cannot be found.
class PluginError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct LoadedPlugin {
  const PluginInfo* info = nullptr;
  std::filesystem::path path;
  // XXH3-128 of the library file as loaded (util/hash.h): with the declared
  // version, the code identity of every run of this method.
  std::string digest;
  std::string name() const { return info->name; }
};

struct LoadFailure {
  std::filesystem::path path;
  std::string reason;
};

// The core's own fingerprint.
AbiFingerprint core_fingerprint();

// "" when compatible; otherwise every differing field, e.g.
// "api_version: plugin 2, reglab 1; torch_version: plugin 2.1.0, reglab 1.13.0".
std::string fingerprint_mismatch(const AbiFingerprint& plugin, const AbiFingerprint& core);

// Loads one library and checks its handshake. Throws PluginError naming the
// file: cannot open, no entry symbol, null info, API/ABI mismatch, empty name,
// no factory.
LoadedPlugin load_plugin(const std::filesystem::path& file);

// The folders searched, in order (existing or not).
std::vector<std::filesystem::path> plugin_search_path();

class Registry {
 public:
  // Loads every candidate in the search path; failures are kept, not thrown.
  static Registry discover();
  static Registry discover(const std::vector<std::filesystem::path>& dirs);

  const std::vector<LoadedPlugin>& plugins() const { return plugins_; }
  const std::vector<LoadFailure>& failures() const { return failures_; }
  // Loaded fine, but a plugin of the same name found earlier is used instead.
  const std::vector<LoadFailure>& shadowed() const { return shadowed_; }
  std::vector<std::string> names() const;
  const LoadedPlugin* find(const std::string& name) const;
  // Throws PluginError for an unknown name, suggesting the closest names and
  // mentioning load failures.
  const LoadedPlugin& get(const std::string& name) const;

 private:
  std::vector<LoadedPlugin> plugins_;
  std::vector<LoadFailure> failures_;
  std::vector<LoadFailure> shadowed_;
};

// The process-wide registry, discovered on first use.
const Registry& registry();

}  // namespace reglab::plugins

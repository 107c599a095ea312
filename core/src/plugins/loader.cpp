#include "plugins/loader.h"

#include <torch/version.h>

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>

#include "util/hash.h"
#include "util/util.h"

namespace reglab::plugins {

namespace fs = std::filesystem;

AbiFingerprint core_fingerprint() {
  return AbiFingerprint{kApiVersion, TORCH_VERSION, REGLAB_CXX11_ABI, REGLAB_COMPILER};
}

namespace {

std::string str_or_null(const char* s) { return s ? s : "(null)"; }

// Libraries stay loaded until the process exits: autograd nodes, deleters and
// exception objects made by plugin code can outlive every Method. The list is
// deliberately leaked so no destructor ever runs dlclose.
std::vector<boost::dll::shared_library*>& loaded_libraries() {
  static auto* libs = new std::vector<boost::dll::shared_library*>();
  return *libs;
}
std::mutex& load_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

std::string fingerprint_mismatch(const AbiFingerprint& plugin, const AbiFingerprint& core) {
  std::vector<std::string> diffs;
  if (plugin.api_version != core.api_version)
    diffs.push_back("api_version: plugin " + std::to_string(plugin.api_version) + ", reglab " +
                    std::to_string(core.api_version));
  if (str_or_null(plugin.torch_version) != str_or_null(core.torch_version))
    diffs.push_back("torch_version: plugin " + str_or_null(plugin.torch_version) + ", reglab " +
                    str_or_null(core.torch_version));
  if (plugin.cxx11_abi != core.cxx11_abi)
    diffs.push_back("cxx11_abi: plugin " + std::to_string(plugin.cxx11_abi) + ", reglab " +
                    std::to_string(core.cxx11_abi));
  if (str_or_null(plugin.compiler) != str_or_null(core.compiler))
    diffs.push_back("compiler: plugin " + str_or_null(plugin.compiler) + ", reglab " + str_or_null(core.compiler));
  return util::join(diffs, "; ");
}

LoadedPlugin load_plugin(const fs::path& file) {
  std::lock_guard<std::mutex> lock(load_mutex());
  auto fail = [&](const std::string& why) -> PluginError {
    return PluginError("plugin " + file.string() + ": " + why);
  };
  if (!fs::exists(file)) throw fail("file does not exist");

  auto lib = std::make_unique<boost::dll::shared_library>();
  std::error_code ec;
  // Local symbols: two plugins may define the same internal names.
  lib->load(file, ec, boost::dll::load_mode::rtld_lazy | boost::dll::load_mode::rtld_local);
  if (ec) throw fail("cannot be loaded: " + ec.message());

  const char* symbol = REGLAB_STRINGIFY(REGLAB_PLUGIN_ENTRY_SYMBOL);
  if (!lib->has(symbol)) {
    // Keep it loaded anyway: a failed library may already have run static
    // initialisers that registered things with LibTorch.
    loaded_libraries().push_back(lib.release());
    throw fail(std::string("missing entry symbol '") + symbol +
               "' (declare the plugin with REGLAB_PLUGIN(...) from reglab/plugin.h)");
  }
  using EntryFn = const PluginInfo*();
  EntryFn& entry = lib->get<EntryFn>(symbol);
  loaded_libraries().push_back(lib.release());

  const PluginInfo* info = entry();
  if (info == nullptr) throw fail("entry symbol returned no plugin info");
  std::string mismatch = fingerprint_mismatch(info->abi, core_fingerprint());
  if (!mismatch.empty()) {
    std::string name = info->name ? info->name : "?";
    throw fail("method '" + name + "' was built for another reglab or LibTorch (" + mismatch +
               "); rebuild it against this reglab SDK");
  }
  if (info->name == nullptr || std::string(info->name).empty()) throw fail("plugin declares no name");
  if (info->create == nullptr || info->destroy == nullptr) throw fail("plugin declares no factory");
  if (info->num_params > 0 && info->params == nullptr) throw fail("plugin declares parameters but no array");
  std::string digest;
  try {
    digest = util::hash_file_hex(file);
  } catch (const std::exception& e) {
    throw fail(std::string("cannot be hashed for its code identity: ") + e.what());
  }
  return LoadedPlugin{info, file, digest};
}

std::vector<fs::path> plugin_search_path() {
  std::vector<fs::path> dirs;
  fs::path exe = boost::dll::program_location().parent_path();
#ifdef REGLAB_BUILD_PLUGIN_DIR
  // Only a binary running from the build tree uses the build's plugins: an
  // installed one would otherwise load the (maybe newer or older) build's
  // copies first and list its own installed ones as duplicates.
  {
    std::error_code ec;
    const fs::path build = fs::weakly_canonical(fs::path(REGLAB_BUILD_PLUGIN_DIR).parent_path(), ec);
    const fs::path here = fs::weakly_canonical(exe, ec);
    const auto mismatch = std::mismatch(build.begin(), build.end(), here.begin(), here.end());
    if (!build.empty() && mismatch.first == build.end()) dirs.emplace_back(REGLAB_BUILD_PLUGIN_DIR);
  }
#endif
  // Installed layout: <prefix>/bin/reglab and <prefix>/lib/reglab/plugins.
  if (!exe.empty()) dirs.push_back(exe.parent_path() / REGLAB_INSTALL_PLUGIN_DIR_REL);
  if (const char* env = std::getenv("REGLAB_PLUGIN_PATH")) {
    for (const std::string& d : util::split(env, ':'))
      if (!d.empty()) dirs.emplace_back(d);
  }
  return dirs;
}

Registry Registry::discover() { return discover(plugin_search_path()); }

Registry Registry::discover(const std::vector<fs::path>& dirs) {
  Registry reg;
  std::set<fs::path> seen_files;
  std::map<std::string, fs::path> seen_names;
  for (const fs::path& dir : dirs) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      std::string fname = entry.path().filename().string();
      if (util::starts_with(fname, "libreglab_") && entry.path().extension() == ".so") files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
      fs::path canonical = fs::weakly_canonical(f, ec);
      if (!seen_files.insert(canonical).second) continue;
      try {
        LoadedPlugin p = load_plugin(f);
        auto [it, inserted] = seen_names.emplace(p.name(), f);
        if (!inserted) {
          reg.shadowed_.push_back({f, "method '" + p.name() + "' is already provided by " + it->second.string()});
          continue;
        }
        reg.plugins_.push_back(p);
      } catch (const std::exception& e) {
        reg.failures_.push_back({f, e.what()});
      }
    }
  }
  std::sort(reg.plugins_.begin(), reg.plugins_.end(),
            [](const LoadedPlugin& a, const LoadedPlugin& b) { return a.name() < b.name(); });
  return reg;
}

std::vector<std::string> Registry::names() const {
  std::vector<std::string> out;
  for (const auto& p : plugins_) out.push_back(p.name());
  return out;
}

const LoadedPlugin* Registry::find(const std::string& name) const {
  for (const auto& p : plugins_)
    if (p.name() == name) return &p;
  return nullptr;
}

const LoadedPlugin& Registry::get(const std::string& name) const {
  if (const LoadedPlugin* p = find(name)) return *p;
  std::vector<std::pair<std::size_t, std::string>> scored;
  for (const auto& n : names()) scored.emplace_back(util::edit_distance(name, n), n);
  std::sort(scored.begin(), scored.end());
  std::string msg = "unknown method '" + name + "'";
  std::vector<std::string> close;
  for (const auto& [d, n] : scored)
    if (close.size() < 3 && d <= std::max<std::size_t>(2, name.size() / 2)) close.push_back("'" + n + "'");
  if (!close.empty()) msg += "; did you mean " + util::join(close, " or ") + "?";
  msg += " Known methods: " + (names().empty() ? std::string("none") : util::join(names(), ", ")) + ".";
  if (!failures_.empty())
    msg += " " + std::to_string(failures_.size()) + " plugin(s) failed to load; see `reglab methods`.";
  throw PluginError(msg);
}

const Registry& registry() {
  static const Registry reg = Registry::discover();
  return reg;
}

}  // namespace reglab::plugins

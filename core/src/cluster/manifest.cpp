#include "cluster/manifest.h"

#include <fstream>
#include <stdexcept>

namespace reglab::cluster {

namespace fs = std::filesystem;

void write_manifest(const fs::path& path, const std::vector<ManifestEntry>& entries) {
  fs::create_directories(path.parent_path());
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
    for (const auto& e : entries) {
      config::Json line = {{"sweep", e.sweep}, {"description", e.description}, {"key", e.key},
                           {"label", e.label}, {"method", e.method},           {"config", e.config}};
      out << line.dump() << "\n";
    }
    out.flush();
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, path);
}

ManifestEntry read_manifest_entry(const fs::path& path, int index) {
  if (index < 0) throw std::runtime_error(path.string() + ": element index " + std::to_string(index) + " is negative");
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read the manifest " + path.string());
  std::string line;
  for (int i = 0; i <= index; ++i) {
    if (!std::getline(in, line))
      throw std::runtime_error(path.string() + " has " + std::to_string(i) + " trial(s); there is no element " +
                               std::to_string(index));
  }
  try {
    const auto j = config::Json::parse(line);
    ManifestEntry e;
    e.sweep = j.at("sweep").get<std::string>();
    e.description = j.value("description", "");
    e.key = j.at("key").get<std::string>();
    e.label = j.value("label", "");
    e.method = j.value("method", "");
    e.config = j.at("config");
    if (!e.config.is_object()) throw std::runtime_error("'config' is not an object");
    return e;
  } catch (const std::exception& ex) {
    throw std::runtime_error(path.string() + ":" + std::to_string(index + 1) + ": not a manifest entry: " + ex.what());
  }
}

}  // namespace reglab::cluster

#include "store/run_folder.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <system_error>

namespace reglab::store {

namespace fs = std::filesystem;

std::optional<FolderOwner> read_run_folder_owner(const fs::path& dir) {
  std::ifstream in(dir / kOwnerFile);
  if (!in) return std::nullopt;
  try {
    const nlohmann::json j = nlohmann::json::parse(in);
    FolderOwner o;
    o.store_id = j.at("store").get<std::string>();
    o.run_id = j.at("run").get<std::int64_t>();
    o.key = j.at("key").get<std::string>();
    return o;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void write_run_folder_owner(const fs::path& dir, const FolderOwner& owner) {
  const fs::path file = dir / kOwnerFile;
  fs::path tmp = file;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << nlohmann::json{{"store", owner.store_id}, {"run", owner.run_id}, {"key", owner.key}}.dump() << "\n";
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, file, ec);
  if (ec) throw std::runtime_error("cannot write " + file.string() + ": " + ec.message());
}

}  // namespace reglab::store

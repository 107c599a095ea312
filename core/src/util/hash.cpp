#include "util/hash.h"

#include <xxhash.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <vector>

namespace reglab::util {
namespace {

std::string canonical_hex(XXH128_hash_t h) {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, h);
  static const char* kDigits = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[2 * i] = kDigits[c.digest[i] >> 4];
    out[2 * i + 1] = kDigits[c.digest[i] & 0xf];
  }
  return out;
}

struct StateFree {
  void operator()(XXH3_state_t* s) const { XXH3_freeState(s); }
};

}  // namespace

std::string hash_hex(std::string_view data) { return canonical_hex(XXH3_128bits(data.data(), data.size())); }

std::string hash_file_hex(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + file.string() + " to hash it");
  std::unique_ptr<XXH3_state_t, StateFree> state(XXH3_createState());
  if (!state || XXH3_128bits_reset(state.get()) != XXH_OK) throw std::runtime_error("xxhash: cannot create a state");
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const std::streamsize n = in.gcount();
    if (n > 0) XXH3_128bits_update(state.get(), buf.data(), static_cast<std::size_t>(n));
  }
  if (in.bad()) throw std::runtime_error("error reading " + file.string() + " to hash it");
  return canonical_hex(XXH3_128bits_digest(state.get()));
}

std::uint64_t hash64(std::string_view data) { return XXH3_64bits(data.data(), data.size()); }

}  // namespace reglab::util

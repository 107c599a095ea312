// util/hash.h — the one hash of reglab's records. No torch.
//
// Trial keys, stage and artifact checksums, the corruption cache and code
// digests all come from here, so that every digest in the store is the same
// well-known function: XXH3-128 of libxxhash (Debian's libxxhash-dev), written
// as 32 lower-case hex digits in xxHash's canonical (big-endian) byte order —
// what `xxhsum -H2` and Python's `xxhash.xxh3_128_hexdigest` print. The store
// records the algorithm's name (meta.hash_algorithm = kHashAlgorithm) so a
// later change of hash is a visible schema migration, never a silent one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace reglab::util {

inline constexpr const char* kHashAlgorithm = "xxh3-128";

// XXH3-128 of `data` as 32 hex digits.
std::string hash_hex(std::string_view data);

// XXH3-128 of a file's bytes, streamed (a checkpoint or a plugin library is
// never read whole into memory). Throws std::runtime_error naming the file
// when it cannot be read.
std::string hash_file_hex(const std::filesystem::path& file);

// XXH3-64 with seed 0: for derived values that need a number rather than a
// record (a seed from a corruption's name, a feature bucket of an n-gram).
std::uint64_t hash64(std::string_view data);

}  // namespace reglab::util

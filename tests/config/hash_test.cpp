// util/hash.h against another implementation of XXH3: Debian's python3-xxhash
// 3.0.0 (/usr/bin/python3 -c 'import xxhash; ...'), the call beside each value.
#include "util/hash.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "store/temp_db.h"

namespace {

TEST(Hash, Xxh3Of128BitsMatchesPythonXxhash) {
  // xxhash.xxh3_128_hexdigest(b"")
  EXPECT_EQ(reglab::util::hash_hex(""), "99aa06d3014798d86001c324468d497f");
  // xxhash.xxh3_128_hexdigest(b"abc")
  EXPECT_EQ(reglab::util::hash_hex("abc"), "06b05ab6733a618578af5f94892f3950");
  // xxhash.xxh3_128_hexdigest(b"reglab")
  EXPECT_EQ(reglab::util::hash_hex("reglab"), "53fbed9a6d4f878fc3bf869effef03df");
  EXPECT_STREQ(reglab::util::kHashAlgorithm, "xxh3-128");
}

TEST(Hash, Xxh3Of64BitsMatchesPythonXxhash) {
  // xxhash.xxh3_64_intdigest(b"abc"), xxhash.xxh3_64_intdigest(b"reglab")
  EXPECT_EQ(reglab::util::hash64("abc"), 8696274497037089104ULL);
  EXPECT_EQ(reglab::util::hash64("reglab"), 9476052921680276213ULL);
}

TEST(Hash, AFileIsHashedInPiecesAsItsWholeBytes) {
  // Larger than the 1 MiB read buffer, so the streaming path is crossed.
  // big = bytes(range(256)) * 4099; xxhash.xxh3_128_hexdigest(big)
  reglab::testing_support::TempDir dir;
  const auto file = dir.path() / "big.bin";
  {
    std::ofstream out(file, std::ios::binary);
    for (int r = 0; r < 4099; ++r)
      for (int b = 0; b < 256; ++b) out.put(static_cast<char>(b));
  }
  ASSERT_EQ(std::filesystem::file_size(file), 1049344u);
  EXPECT_EQ(reglab::util::hash_file_hex(file), "3eb413071bb36356ebd7da7da24295f8");
  EXPECT_THROW(reglab::util::hash_file_hex(dir.path() / "missing"), std::runtime_error);
}

}  // namespace

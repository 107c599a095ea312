// read_idx_gz on small files written here with zlib: valid label and image
// files, and the broken ones a user can end up with.
#include "data/dataset.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using reglab::data::read_idx_gz;
namespace fs = std::filesystem;

class IdxReader : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(REGLAB_TEST_BINARY_DIR) /
           ("idx_reader_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write_gz(const std::string& name, const std::vector<unsigned char>& bytes) {
    const std::string path = (dir_ / name).string();
    gzFile f = gzopen(path.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    EXPECT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
    gzclose(f);
    return path;
  }

  fs::path dir_;
};

void put_u32(std::vector<unsigned char>& out, std::uint32_t v) {
  out.push_back(static_cast<unsigned char>(v >> 24));
  out.push_back(static_cast<unsigned char>(v >> 16));
  out.push_back(static_cast<unsigned char>(v >> 8));
  out.push_back(static_cast<unsigned char>(v));
}

// Expects `fn` to throw std::runtime_error whose message contains every
// string in `parts`.
template <typename Fn>
void expect_error(Fn fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

TEST_F(IdxReader, ReadsLabels) {
  std::vector<unsigned char> b;
  put_u32(b, 0x00000801);
  put_u32(b, 5);
  for (unsigned char v : {3, 0, 9, 255, 7}) b.push_back(v);
  const torch::Tensor t = read_idx_gz(write_gz("labels.gz", b));
  EXPECT_EQ(t.scalar_type(), torch::kUInt8);
  EXPECT_EQ(t.sizes(), (std::vector<std::int64_t>{5}));
  EXPECT_TRUE(torch::equal(t, torch::tensor({3, 0, 9, 255, 7}, torch::kUInt8)));
}

TEST_F(IdxReader, ReadsImagesRowMajorWithBigEndianDims) {
  // 2 images of 3 rows x 258 columns: 258 needs two bytes (0x00000102), so a
  // little-endian reader would get the shape wrong.
  std::vector<unsigned char> b;
  put_u32(b, 0x00000803);
  put_u32(b, 2);
  put_u32(b, 3);
  put_u32(b, 258);
  for (int i = 0; i < 2 * 3 * 258; ++i) b.push_back(static_cast<unsigned char>(i % 251));
  const torch::Tensor t = read_idx_gz(write_gz("images.gz", b));
  EXPECT_EQ(t.sizes(), (std::vector<std::int64_t>{2, 3, 258}));
  // Element [1][2][5] is byte (1·3·258 + 2·258 + 5) = 1295 -> 1295 % 251 = 40.
  EXPECT_EQ(t[1][2][5].item<int>(), 40);
  EXPECT_EQ(t[0][0][0].item<int>(), 0);
  EXPECT_EQ(t[0][1][0].item<int>(), 258 % 251);
}

TEST_F(IdxReader, EmptyFileWithZeroItemsIsValid) {
  std::vector<unsigned char> b;
  put_u32(b, 0x00000801);
  put_u32(b, 0);
  EXPECT_EQ(read_idx_gz(write_gz("empty.gz", b)).numel(), 0);
}

TEST_F(IdxReader, MissingFile) {
  const std::string path = (dir_ / "nope.gz").string();
  expect_error([&] { read_idx_gz(path); }, {"not found", path});
}

TEST_F(IdxReader, BadMagic) {
  std::vector<unsigned char> b;
  put_u32(b, 0x00000C03);  // float images: not what we read
  put_u32(b, 1);
  put_u32(b, 1);
  put_u32(b, 1);
  b.insert(b.end(), {0, 0, 0, 0});
  const std::string path = write_gz("float.gz", b);
  expect_error([&] { read_idx_gz(path); }, {"magic", "0x00000C03", path});
  // A plain-text file (gzread passes non-gzip data through).
  const std::string text = (dir_ / "text.gz").string();
  std::ofstream(text) << "hello world\n";
  expect_error([&] { read_idx_gz(text); }, {"magic", text});
}

TEST_F(IdxReader, TruncatedData) {
  std::vector<unsigned char> b;
  put_u32(b, 0x00000803);
  put_u32(b, 10);
  put_u32(b, 28);
  put_u32(b, 28);
  b.resize(b.size() + 100, 1);  // 7840 declared, 100 present
  const std::string path = write_gz("short.gz", b);
  expect_error([&] { read_idx_gz(path); }, {"truncated", path, "7840", "100"});
}

TEST_F(IdxReader, TruncatedHeader) {
  std::vector<unsigned char> b;
  put_u32(b, 0x00000803);
  put_u32(b, 10);  // two of three dims missing
  const std::string path = write_gz("header.gz", b);
  expect_error([&] { read_idx_gz(path); }, {"truncated", path});
  const std::string tiny = write_gz("tiny.gz", {0, 0});
  expect_error([&] { read_idx_gz(tiny); }, {"truncated", tiny});
}

TEST_F(IdxReader, TrailingBytes) {
  std::vector<unsigned char> b;
  put_u32(b, 0x00000801);
  put_u32(b, 2);
  b.insert(b.end(), {1, 2, 3});
  const std::string path = write_gz("long.gz", b);
  expect_error([&] { read_idx_gz(path); }, {"beyond", path});
}

TEST_F(IdxReader, CutGzipStream) {
  // A download cut short: a valid gzip stream with its tail missing.
  std::vector<unsigned char> b;
  put_u32(b, 0x00000801);
  put_u32(b, 20000);
  for (int i = 0; i < 20000; ++i) b.push_back(static_cast<unsigned char>((i * 7919) % 256));
  const std::string full = write_gz("full.gz", b);
  std::ifstream in(full, std::ios::binary);
  std::vector<char> gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(gz.size(), 200u);
  const std::string cut = (dir_ / "cut.gz").string();
  std::ofstream(cut, std::ios::binary).write(gz.data(), static_cast<std::streamsize>(gz.size() / 2));
  expect_error([&] { read_idx_gz(cut); }, {"gzip", cut});
}

}  // namespace

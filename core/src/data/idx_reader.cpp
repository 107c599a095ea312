// data/idx_reader.cpp — reads gzip-compressed IDX files (the MNIST family's
// format) straight into a uint8 tensor.
//
// IDX layout: a 4-byte big-endian magic (two zero bytes, a type code, the
// number of dimensions), one big-endian uint32 per dimension, then the data
// in row-major order. We accept only unsigned bytes (type 0x08) with one
// dimension (labels, magic 0x00000801) or three (images, 0x00000803): that is
// all Fashion-MNIST uses, and anything else is more likely a wrong file than
// a format we should guess at.
#include "data/dataset.h"

#include <torch/types.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace reglab::data {
namespace {

constexpr std::uint32_t kLabelsMagic = 0x00000801;
constexpr std::uint32_t kImagesMagic = 0x00000803;
// Refuse absurd headers before allocating: 1 GiB is far above any dataset
// this reader is meant for, and a corrupt header can claim anything.
constexpr std::uint64_t kMaxElements = std::uint64_t{1} << 30;

std::uint32_t big_endian_u32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

// Owns the gzFile so every error path closes it.
class GzFile {
 public:
  explicit GzFile(const std::string& path) : path_(path), file_(gzopen(path.c_str(), "rb")) {
    if (file_ == nullptr) {
      throw std::runtime_error("cannot open IDX file: " + path);
    }
    // A large internal buffer: inflating in big steps is what makes the 47 MB
    // of training images load in a fraction of a second.
    gzbuffer(file_, 1 << 20);
  }
  ~GzFile() { gzclose(file_); }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;

  // Reads up to `size` bytes; returns how many were read (fewer only at end
  // of file). Decompression errors (a damaged gzip stream) throw.
  std::uint64_t read(void* out, std::uint64_t size) {
    auto* dst = static_cast<unsigned char*>(out);
    std::uint64_t done = 0;
    while (done < size) {
      // gzread takes an unsigned count and returns an int: read in chunks.
      const auto chunk = static_cast<unsigned>(std::min<std::uint64_t>(size - done, 1u << 30));
      const int got = gzread(file_, dst + done, chunk);
      // zlib reports a cut stream ("unexpected end of file") as a short read
      // with an error state, and a damaged one as -1: both are worth naming.
      int code = Z_OK;
      const char* message = gzerror(file_, &code);
      if (got < 0 || code != Z_OK) {
        throw std::runtime_error("corrupt or truncated gzip data in IDX file " + path_ + ": " +
                                 (message != nullptr ? message : "unknown zlib error"));
      }
      if (got == 0) break;
      done += static_cast<std::uint64_t>(got);
    }
    return done;
  }

 private:
  std::string path_;
  gzFile file_;
};

}  // namespace

torch::Tensor read_idx_gz(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw std::runtime_error("IDX file not found: " + path);
  }
  GzFile file(path);

  std::array<unsigned char, 4> magic_bytes{};
  if (file.read(magic_bytes.data(), magic_bytes.size()) != magic_bytes.size()) {
    throw std::runtime_error("truncated IDX file " + path + ": no 4-byte header");
  }
  const std::uint32_t magic = big_endian_u32(magic_bytes.data());
  if (magic != kLabelsMagic && magic != kImagesMagic) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%08X", static_cast<unsigned>(magic));
    throw std::runtime_error("bad IDX magic " + std::string(hex) + " in " + path +
                             " (expected 0x00000801 for labels or 0x00000803 for images)");
  }
  const int ndims = magic_bytes[3];

  std::vector<unsigned char> dim_bytes(static_cast<std::size_t>(ndims) * 4);
  if (file.read(dim_bytes.data(), dim_bytes.size()) != dim_bytes.size()) {
    throw std::runtime_error("truncated IDX file " + path + ": header ends before its " +
                             std::to_string(ndims) + " dimension sizes");
  }
  std::vector<std::int64_t> shape;
  std::uint64_t elements = 1;
  for (int d = 0; d < ndims; ++d) {
    const std::uint32_t n = big_endian_u32(dim_bytes.data() + 4 * d);
    shape.push_back(static_cast<std::int64_t>(n));
    elements *= n;
    if (elements > kMaxElements) {
      throw std::runtime_error("implausible IDX header in " + path + ": more than 2^30 elements");
    }
  }

  torch::Tensor out = torch::empty(shape, torch::kUInt8);
  const std::uint64_t got = file.read(out.data_ptr<std::uint8_t>(), elements);
  if (got != elements) {
    throw std::runtime_error("truncated IDX file " + path + ": header declares " +
                             std::to_string(elements) + " bytes of data, file has " +
                             std::to_string(got));
  }
  unsigned char extra = 0;
  if (file.read(&extra, 1) != 0) {
    throw std::runtime_error("IDX file " + path + " has data beyond the " +
                             std::to_string(elements) + " bytes its header declares");
  }
  return out;
}

}  // namespace reglab::data

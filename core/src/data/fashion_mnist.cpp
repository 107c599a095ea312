// data/fashion_mnist.cpp — Fashion-MNIST from the four gzip IDX files.
#include "data/sources.h"

#include <torch/types.h>

#include <filesystem>
#include <future>
#include <stdexcept>
#include <string>

namespace reglab::data::detail {
namespace {

constexpr std::int64_t kClasses = 10;
constexpr std::int64_t kSide = 28;

std::string require_file(const std::string& root, const std::string& name) {
  const std::string path = (std::filesystem::path(root) / name).string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw std::runtime_error("Fashion-MNIST file not found: " + path +
                             " (install Debian's dataset-fashion-mnist, or set data.root)");
  }
  return path;
}

// Reads one images/labels pair and checks that they describe the same
// samples, 28x28 images and labels 0..9.
void load_pair(const std::string& images_path, const std::string& labels_path, torch::Tensor& x,
               torch::Tensor& y) {
  torch::Tensor images = read_idx_gz(images_path);
  torch::Tensor labels = read_idx_gz(labels_path);
  if (images.dim() != 3 || images.size(1) != kSide || images.size(2) != kSide) {
    throw std::runtime_error("not a Fashion-MNIST image file (expected [N, 28, 28] images): " +
                             images_path);
  }
  if (labels.dim() != 1) {
    throw std::runtime_error("not a Fashion-MNIST label file (expected a 1-D IDX file): " +
                             labels_path);
  }
  if (labels.size(0) != images.size(0)) {
    throw std::runtime_error("Fashion-MNIST files disagree: " + images_path + " has " +
                             std::to_string(images.size(0)) + " images but " + labels_path +
                             " has " + std::to_string(labels.size(0)) + " labels");
  }
  if (labels.numel() > 0 && labels.max().item<std::int64_t>() >= kClasses) {
    throw std::runtime_error("Fashion-MNIST label file has a label outside 0..9: " + labels_path);
  }
  x = images.unsqueeze(1);  // [N, 1, 28, 28], still uint8
  y = labels.to(torch::kInt64);
}

}  // namespace

RawData load_fashion_mnist(const std::string& root) {
  // Check all four up front so a missing download is reported before any
  // decompression work.
  const std::string train_images = require_file(root, "train-images-idx3-ubyte.gz");
  const std::string train_labels = require_file(root, "train-labels-idx1-ubyte.gz");
  const std::string test_images = require_file(root, "t10k-images-idx3-ubyte.gz");
  const std::string test_labels = require_file(root, "t10k-labels-idx1-ubyte.gz");

  RawData raw;
  // Inflating is the whole cost; the test pair decompresses on a second
  // thread while this one does the (six times larger) training pair.
  auto test_part = std::async(std::launch::async, [&] {
    load_pair(test_images, test_labels, raw.test_x, raw.test_y);
  });
  load_pair(train_images, train_labels, raw.train_x, raw.train_y);
  test_part.get();

  raw.num_classes = kClasses;
  raw.input_shape = {1, kSide, kSide};
  return raw;
}

}  // namespace reglab::data::detail

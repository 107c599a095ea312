#include "probe/tensor_json.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace reglab::probe {
namespace {

using nlohmann::json;

std::string position(const std::string& what, const std::vector<std::int64_t>& index) {
  std::string s = what;
  for (std::int64_t i : index) s += "[" + std::to_string(i) + "]";
  return s;
}

std::string kind_of(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_string()) return "the string " + v.dump();
  if (v.is_object()) return "an object";
  if (v.is_array()) return "a list";
  return "the number " + v.dump();
}

// The shape is read along the first element at every depth; flatten() then
// checks every other element against it.
std::vector<std::int64_t> leading_shape(const json& v) {
  std::vector<std::int64_t> shape;
  const json* cur = &v;
  while (cur->is_array()) {
    shape.push_back(static_cast<std::int64_t>(cur->size()));
    if (cur->empty()) break;
    cur = &cur->front();
  }
  return shape;
}

enum class LeafKind { kFloat, kInt, kBool };

struct Flattener {
  const std::string& what;
  const std::vector<std::int64_t>& shape;
  LeafKind kind;
  std::vector<double> floats;
  std::vector<std::int64_t> ints;
  std::vector<std::int64_t> index;

  [[noreturn]] void fail(const std::string& message) const {
    throw std::invalid_argument(position(what, index) + ": " + message);
  }

  void leaf(const json& v) {
    switch (kind) {
      case LeafKind::kFloat:
        if (v.is_number()) {
          floats.push_back(v.get<double>());
        } else if (v.is_string() && (v == "nan" || v == "inf" || v == "-inf")) {
          const double inf = std::numeric_limits<double>::infinity();
          floats.push_back(v == "nan" ? std::numeric_limits<double>::quiet_NaN() : v == "inf" ? inf : -inf);
        } else {
          fail("expected a number (or \"nan\", \"inf\", \"-inf\"), found " + kind_of(v));
        }
        return;
      case LeafKind::kInt:
        if (v.is_number_unsigned() &&
            v.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
          fail("integer " + v.dump() + " is too large");
        if (!v.is_number_integer()) fail("expected an integer, found " + kind_of(v));
        ints.push_back(v.get<std::int64_t>());
        return;
      case LeafKind::kBool:
        if (!v.is_boolean()) fail("expected true or false, found " + kind_of(v));
        ints.push_back(v.get<bool>() ? 1 : 0);
        return;
    }
  }

  void walk(const json& v, std::size_t depth) {
    if (depth == shape.size()) {
      if (v.is_array()) fail("ragged list: expected a value, found a list");
      leaf(v);
      return;
    }
    if (!v.is_array()) fail("ragged list: expected a list of " + std::to_string(shape[depth]) +
                            " elements, found " + kind_of(v));
    if (static_cast<std::int64_t>(v.size()) != shape[depth])
      fail("ragged list: expected " + std::to_string(shape[depth]) + " elements, found " +
           std::to_string(v.size()));
    index.push_back(0);
    for (const json& e : v) {
      walk(e, depth + 1);
      ++index.back();
    }
    index.pop_back();
  }
};

LeafKind leaf_kind(torch::ScalarType dtype) {
  if (dtype == torch::kBool) return LeafKind::kBool;
  if (c10::isFloatingType(dtype)) return LeafKind::kFloat;
  if (c10::isIntegralType(dtype, /*includeBool=*/false)) return LeafKind::kInt;
  throw std::invalid_argument(std::string("tensor_from_json: unsupported dtype ") + c10::toString(dtype));
}

json to_json_rec(const torch::Tensor& t, std::int64_t dim, std::int64_t offset) {
  if (dim == t.dim()) {
    switch (t.scalar_type()) {
      case torch::kDouble: {
        const double x = t.data_ptr<double>()[offset];
        if (std::isnan(x)) return "nan";
        if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
        return x;
      }
      case torch::kLong:
        return t.data_ptr<std::int64_t>()[offset];
      default:  // kBool, see tensor_to_json
        return t.data_ptr<bool>()[offset];
    }
  }
  json list = json::array();
  for (std::int64_t i = 0; i < t.size(dim); ++i)
    list.push_back(to_json_rec(t, dim + 1, offset + i * t.stride(dim)));
  return list;
}

}  // namespace

torch::Tensor tensor_from_json(const nlohmann::json& value, torch::ScalarType dtype,
                               const std::string& what) {
  const LeafKind kind = leaf_kind(dtype);
  const std::vector<std::int64_t> shape = leading_shape(value);
  Flattener f{what, shape, kind, {}, {}, {}};
  f.walk(value, 0);
  if (kind == LeafKind::kFloat) {
    return torch::from_blob(f.floats.data(), shape, torch::kDouble).to(dtype, /*non_blocking=*/false,
                                                                       /*copy=*/true);
  }
  return torch::from_blob(f.ints.data(), shape, torch::kLong).to(dtype, false, true);
}

nlohmann::json tensor_to_json(const torch::Tensor& tensor) {
  if (!tensor.defined()) throw std::invalid_argument("tensor_to_json: undefined tensor");
  const torch::ScalarType st = tensor.scalar_type();
  torch::ScalarType as;
  if (st == torch::kBool) {
    as = torch::kBool;
  } else if (c10::isFloatingType(st)) {
    as = torch::kDouble;
  } else if (c10::isIntegralType(st, /*includeBool=*/false)) {
    as = torch::kLong;
  } else {
    throw std::invalid_argument(std::string("tensor_to_json: unsupported dtype ") + c10::toString(st));
  }
  const torch::Tensor t = tensor.detach().to(torch::kCPU, as).contiguous();
  return to_json_rec(t, 0, 0);
}

}  // namespace reglab::probe

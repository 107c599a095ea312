// probe/tensor_json: nested JSON lists <-> tensors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "probe/tensor_json.h"

namespace reglab::probe {
namespace {

using nlohmann::json;

std::string error_of(const json& v, torch::ScalarType dtype) {
  try {
    tensor_from_json(v, dtype, "x");
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(TensorJson, ReadsShapeAndValuesOfAnyRank) {
  const torch::Tensor scalar = tensor_from_json(json(2.5), torch::kDouble, "x");
  EXPECT_EQ(scalar.dim(), 0);
  EXPECT_EQ(scalar.item<double>(), 2.5);

  const torch::Tensor m = tensor_from_json(json::parse("[[1, 2.5, -3], [4, 5, 6]]"), torch::kFloat, "x");
  EXPECT_EQ(m.scalar_type(), torch::kFloat);
  EXPECT_EQ(m.sizes(), (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(m[0][1].item<float>(), 2.5f);
  EXPECT_EQ(m[1][2].item<float>(), 6.0f);

  const torch::Tensor r3 = tensor_from_json(json::parse("[[[1], [2]], [[3], [4]]]"), torch::kDouble, "x");
  EXPECT_EQ(r3.sizes(), (std::vector<std::int64_t>{2, 2, 1}));
  EXPECT_EQ(r3[1][0][0].item<double>(), 3.0);

  const torch::Tensor empty = tensor_from_json(json::array(), torch::kDouble, "x");
  EXPECT_EQ(empty.sizes(), (std::vector<std::int64_t>{0}));
}

TEST(TensorJson, IntegersStayExact) {
  // 2^53 + 1 is not representable as a double; an int64 tensor must keep it.
  const torch::Tensor t = tensor_from_json(json::parse("[9007199254740993, -4]"), torch::kLong, "x");
  EXPECT_EQ(t.scalar_type(), torch::kLong);
  EXPECT_EQ(t[0].item<std::int64_t>(), 9007199254740993LL);
  EXPECT_EQ(t[1].item<std::int64_t>(), -4);
}

TEST(TensorJson, ReportsRaggedListsWithTheirPosition) {
  EXPECT_EQ(error_of(json::parse("[[1, 2], [3]]"), torch::kDouble),
            "x[1]: ragged list: expected 2 elements, found 1");
  EXPECT_EQ(error_of(json::parse("[[1, 2], 3]"), torch::kDouble),
            "x[1]: ragged list: expected a list of 2 elements, found the number 3");
  EXPECT_EQ(error_of(json::parse("[1, [2]]"), torch::kDouble), "x[1]: ragged list: expected a value, found a list");
  EXPECT_EQ(error_of(json::parse("[[[1, 2]], [[3, 4, 5]]]"), torch::kDouble),
            "x[1][0]: ragged list: expected 2 elements, found 3");
}

TEST(TensorJson, RejectsNonNumbers) {
  EXPECT_EQ(error_of(json::parse(R"([1, "a"])"), torch::kDouble),
            "x[1]: expected a number (or \"nan\", \"inf\", \"-inf\"), found the string \"a\"");
  EXPECT_EQ(error_of(json::parse("[1, null]"), torch::kDouble).rfind("x[1]: expected a number", 0), 0u);
  EXPECT_EQ(error_of(json::parse("{}"), torch::kDouble).rfind("x: expected a number", 0), 0u);
  EXPECT_EQ(error_of(json::parse("[0, 1.5]"), torch::kLong), "x[1]: expected an integer, found the number 1.5");
  EXPECT_EQ(error_of(json::parse("[true]"), torch::kLong), "x[0]: expected an integer, found a boolean");
  EXPECT_EQ(error_of(json::parse("[18446744073709551615]"), torch::kLong).rfind("x[0]: integer", 0), 0u);
}

TEST(TensorJson, NonFiniteValuesRoundTripAsStrings) {
  const torch::Tensor t = tensor_from_json(json::parse(R"(["nan", "inf", "-inf", 1])"), torch::kDouble, "x");
  EXPECT_TRUE(std::isnan(t[0].item<double>()));
  EXPECT_EQ(t[1].item<double>(), INFINITY);
  EXPECT_EQ(t[2].item<double>(), -INFINITY);
  EXPECT_EQ(tensor_to_json(t), json::parse(R"(["nan", "inf", "-inf", 1.0])"));
}

TEST(TensorJson, WritesNestedListsOfTheRightKind) {
  const torch::Tensor d = torch::arange(6, torch::kDouble).reshape({2, 3}) / 4;
  EXPECT_EQ(tensor_to_json(d), json::parse("[[0.0, 0.25, 0.5], [0.75, 1.0, 1.25]]"));
  // Non-contiguous views are written in logical order.
  EXPECT_EQ(tensor_to_json(d.t()), json::parse("[[0.0, 0.75], [0.25, 1.0], [0.5, 1.25]]"));
  const json ints = tensor_to_json(torch::tensor({3, -1}, torch::kInt));
  EXPECT_TRUE(ints[0].is_number_integer());
  EXPECT_EQ(ints, json::parse("[3, -1]"));
  EXPECT_EQ(tensor_to_json(torch::tensor({true, false})), json::parse("[true, false]"));
  EXPECT_EQ(tensor_to_json(torch::tensor(0.5)), json(0.5));
  // float32 values are written exactly (as the double they are).
  EXPECT_EQ(tensor_to_json(torch::tensor({0.1f}))[0].get<double>(), static_cast<double>(0.1f));
}

TEST(TensorJson, RoundTripsThroughText) {
  const torch::Tensor t = torch::randn({3, 2, 4}, torch::kDouble);
  const torch::Tensor back = tensor_from_json(json::parse(tensor_to_json(t).dump()), torch::kDouble, "t");
  EXPECT_TRUE(torch::equal(t, back));
}

}  // namespace
}  // namespace reglab::probe

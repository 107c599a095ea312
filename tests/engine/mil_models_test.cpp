// Attention-MIL models (models/mil_models.h) against the reference models
// with the same weights, and the padding of bags of different sizes.
//
// Expected values were printed by Debian's python3-torch 1.13 running
//   - the official AEM ABMIL (dazhangyu123/AEM @ 4a928a8,
//     architecture/transformer.py: DimReduction + Attention_Gated +
//     Classifier_1fc; D_feat 6, D_inner 4, D 3, 2 classes; the unused einops
//     import stubbed out): its logits and attention logits;
//   - Ilse et al.'s GatedAttention and Attention (AMLab-Amsterdam/
//     AttentionDeepMIL @ eb0434b, model.py; LeNet encoder, M 500, L 128): the
//     attention weights they return, and their parameter counts without the
//     classifier;
//   - for two heads (our extension), the equations of mil_models.h written
//     out with a Python loop over heads and bags (h = ReLU(x W1ᵀ); head k sees
//     h[:, 2k:2k+2]; tanh(h_k V_k + b_V) [⊙ sigmoid(h_k U_k + b_U)] w_k + b_w;
//     softmax per bag; z = concat_k Σ a h_k; z Cᵀ + c).
// Every weight is fill(shape, phase, fan_in[, scale]) below, evaluated with
// the same torch ops in Python; instance inputs are cos(0.5·k) over the
// flattened index k (for the 28×28 bag: cos(0.5·(i+1)·p), instance i, pixel p).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "models/mil_models.h"

namespace reglab::models {
namespace {

// 2·scale·(frac(sin(12.9898 k + phase)·43758.5453) − ½)/√fan_in over the
// row-major index k, in float64, then float32.
torch::Tensor fill(std::vector<std::int64_t> shape, double phase, double fan_in, double scale = 1.0) {
  std::int64_t m = 1;
  for (std::int64_t s : shape) m *= s;
  const torch::Tensor k = torch::arange(m, torch::kFloat64);
  const torch::Tensor h = torch::sin(k * 12.9898 + phase) * 43758.5453;
  return (scale * 2.0 * (h - torch::floor(h) - 0.5) / std::sqrt(fan_in)).to(torch::kFloat32).view(shape);
}

torch::Tensor cosines(std::vector<std::int64_t> shape) {
  std::int64_t m = 1;
  for (std::int64_t s : shape) m *= s;
  return torch::cos(0.5 * torch::arange(m, torch::kFloat64)).to(torch::kFloat32).view(shape);
}

void set(AttentionMil& model, const std::string& name, const torch::Tensor& value) {
  torch::NoGradGuard no_grad;
  torch::Tensor* p = model->named_parameters().find(name);
  ASSERT_NE(p, nullptr) << "no parameter " << name;
  ASSERT_EQ(p->sizes(), value.sizes()) << name;
  p->copy_(value);
}

void expect_near(const torch::Tensor& actual, const std::vector<double>& expected, double tol, const char* what) {
  const torch::Tensor a = actual.detach().to(torch::kFloat64).flatten();
  ASSERT_EQ(a.numel(), static_cast<std::int64_t>(expected.size())) << what;
  for (std::size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR(a[static_cast<std::int64_t>(i)].item<double>(), expected[i], tol) << what << "[" << i << "]";
}

std::int64_t count(AttentionMil& model, bool with_classifier) {
  std::int64_t n = 0;
  for (const auto& p : model->named_parameters())
    if (with_classifier || p.key().rfind("classifier", 0) != 0) n += p.value().numel();
  return n;
}

AttentionMil make(const MilModelOptions& o, const std::vector<std::int64_t>& input_shape) {
  return AttentionMil(o, input_shape);
}

MilModelOptions small(const std::string& attention, std::int64_t heads) {
  MilModelOptions o;
  o.encoder = "mlp";
  o.hidden = {4};
  o.attention = attention;
  o.heads = heads;
  o.attention_hidden = 3;
  return o;
}

TEST(AttentionMil, MatchesTheOfficialAemAbmil) {
  AttentionMil model = make(small("gated", 1), {6});
  set(model, "encoder.1.weight", fill({4, 6}, 0.1, 6));
  set(model, "attention_v_weight", fill({3, 4}, 0.2, 4).t().unsqueeze(0));
  set(model, "attention_v_bias", fill({3}, 0.3, 4).unsqueeze(0));
  set(model, "attention_u_weight", fill({3, 4}, 0.4, 4).t().unsqueeze(0));
  set(model, "attention_u_bias", fill({3}, 0.5, 4).unsqueeze(0));
  set(model, "attention_w_weight", fill({1, 3}, 0.6, 3));
  set(model, "attention_w_bias", fill({1}, 0.7, 3));
  set(model, "classifier.weight", fill({2, 4}, 0.8, 4));
  set(model, "classifier.bias", fill({2}, 0.9, 4));
  model->eval();
  const MilOutput out = model->forward(cosines({3, 6}), {3});
  expect_near(out.logits, {-0.2043299674987793, -0.02767302468419075}, 2e-6, "logits");
  expect_near(out.attention_logits, {-0.41364550590515137, -0.422965943813324, -0.4032151401042938}, 2e-6,
              "attention_logits");
  EXPECT_EQ(out.attention_logits.sizes(), torch::IntArrayRef({1, 1, 3}));
  EXPECT_TRUE(out.mask.all().item<bool>());
  EXPECT_NEAR(out.attention.sum().item<double>(), 1.0, 1e-6);
  // The encoder is bias-free, as DimReduction: 6·4 weights, nothing else.
  EXPECT_EQ(model->named_parameters().find("encoder.1.bias"), nullptr);
}

class IlseModels : public ::testing::TestWithParam<bool> {};

TEST_P(IlseModels, CnnEncoderAndAttentionMatchTheMnistBagsModels) {
  const bool gated = GetParam();
  MilModelOptions o;
  o.encoder = "cnn";
  o.channels = {20, 50};
  o.hidden = {500};
  o.attention = gated ? "gated" : "plain";
  o.attention_hidden = 128;
  AttentionMil model = make(o, {1, 28, 28});
  set(model, "encoder.0.weight", fill({20, 1, 5, 5}, 1.1, 25));
  set(model, "encoder.0.bias", fill({20}, 1.2, 25));
  set(model, "encoder.3.weight", fill({50, 20, 5, 5}, 1.3, 500));
  set(model, "encoder.3.bias", fill({50}, 1.4, 500));
  set(model, "encoder.7.weight", fill({500, 800}, 1.5, 800));
  set(model, "encoder.7.bias", fill({500}, 1.6, 800));
  set(model, "attention_v_weight", fill({128, 500}, 1.7, 500).t().unsqueeze(0));
  set(model, "attention_v_bias", fill({128}, 1.8, 500).unsqueeze(0));
  if (gated) {
    set(model, "attention_u_weight", fill({128, 500}, 1.9, 500).t().unsqueeze(0));
    set(model, "attention_u_bias", fill({128}, 2.0, 500).unsqueeze(0));
  }
  set(model, "attention_w_weight", fill({1, 128}, 2.1, 128, 20.0));
  set(model, "attention_w_bias", fill({1}, 2.2, 128));
  model->eval();
  const torch::Tensor pixels = torch::arange(784, torch::kFloat64);
  const torch::Tensor bag =
      torch::cos(0.5 * torch::outer(torch::arange(1, 4, torch::kFloat64), pixels)).to(torch::kFloat32).view({3, 1, 28, 28});
  const MilOutput out = model->forward(bag, {3});
  const std::vector<double> expected = gated ? std::vector<double>{0.29455506801605225, 0.34169861674308777, 0.36374637484550476}
                                             : std::vector<double>{0.2551671862602234, 0.34775522351264954, 0.3970775604248047};
  expect_near(out.attention, expected, 2e-6, "attention");
  // Everything but the classifier (ours has 2 outputs, theirs 1 with a sigmoid).
  EXPECT_EQ(count(model, false), gated ? 554455 : 490327);
  EXPECT_EQ(model->named_parameters().find("attention_u_weight") != nullptr, gated);
}

INSTANTIATE_TEST_SUITE_P(GatedAndPlain, IlseModels, ::testing::Bool());

class TwoHeads : public ::testing::TestWithParam<bool> {};

TEST_P(TwoHeads, EachHeadPoolsItsSliceOverEachBag) {
  const bool gated = GetParam();
  AttentionMil model = make(small(gated ? "gated" : "plain", 2), {6});
  set(model, "encoder.1.weight", fill({4, 6}, 0.1, 6));
  set(model, "attention_v_weight", fill({2, 2, 3}, 0.2, 2));
  set(model, "attention_v_bias", fill({2, 3}, 0.3, 2));
  if (gated) {
    set(model, "attention_u_weight", fill({2, 2, 3}, 0.4, 2));
    set(model, "attention_u_bias", fill({2, 3}, 0.5, 2));
  }
  set(model, "attention_w_weight", fill({2, 3}, 0.6, 3));
  set(model, "attention_w_bias", fill({2}, 0.7, 3));
  set(model, "classifier.weight", fill({2, 4}, 0.8, 4));
  set(model, "classifier.bias", fill({2}, 0.9, 4));
  model->eval();
  const MilOutput out = model->forward(cosines({5, 6}), {3, 2});
  const double inf = std::numeric_limits<double>::infinity();
  if (gated) {
    expect_near(out.logits, {-0.20433856546878815, -0.02622513845562935, -0.3835250735282898, 0.1151595190167427}, 2e-6,
                "logits");
    expect_near(out.attention_logits.clamp_min(-1000.0),
                {-0.3826790452003479, -0.37018030881881714, -0.358448326587677, -0.30702048540115356,
                 -0.30327627062797546, -0.3152960538864136, -0.37018030881881714, -0.34284207224845886, -1000.0,
                 -0.30121296644210815, -0.3204641044139862, -1000.0},
                2e-6, "attention_logits");
  } else {
    expect_near(out.logits, {-0.2043103724718094, -0.025317858904600143, -0.3823952078819275, 0.1183847114443779}, 2e-6,
                "logits");
    expect_near(out.attention_logits.clamp_min(-1000.0),
                {-0.2767447531223297, -0.25769054889678955, -0.23277592658996582, -0.30918046832084656,
                 -0.3037034273147583, -0.32423198223114014, -0.25769054889678955, -0.19833999872207642, -1000.0,
                 -0.29980504512786865, -0.3345048725605011, -1000.0},
                2e-6, "attention_logits");
  }
  EXPECT_EQ(out.attention_logits[1][0][2].item<double>(), -inf);
  EXPECT_EQ(out.attention[1][1][2].item<double>(), 0.0);
  EXPECT_TRUE(out.mask.equal(torch::tensor({true, true, true, true, true, false}).view({2, 3})));
}

INSTANTIATE_TEST_SUITE_P(GatedAndPlain, TwoHeads, ::testing::Bool());

// A bag's result does not depend on the bags padded beside it, and padding
// passes no gradient (nor NaN) back, through the attention entropy too.
TEST(AttentionMil, PaddedBatchEqualsBagsAlone) {
  torch::manual_seed(3);
  MilModelOptions o;
  o.hidden = {16, 8};
  o.heads = 4;
  o.attention_hidden = 5;
  AttentionMil model = make(o, {1, 4, 4});
  const std::vector<std::int64_t> sizes = {2, 5, 1, 3};
  const torch::Tensor x = torch::randn({11, 1, 4, 4});
  const MilOutput together = model->forward(x, sizes);
  std::int64_t start = 0;
  for (std::size_t b = 0; b < sizes.size(); ++b) {
    const auto i = static_cast<std::int64_t>(b);
    const MilOutput alone = model->forward(x.slice(0, start, start + sizes[b]), {sizes[b]});
    EXPECT_TRUE(torch::allclose(together.logits[i], alone.logits[0], 1e-5, 1e-6)) << "bag " << b;
    EXPECT_TRUE(torch::allclose(together.attention_logits[i].slice(1, 0, sizes[b]), alone.attention_logits[0], 1e-5,
                                1e-6))
        << "bag " << b;
    start += sizes[b];
  }
  const torch::Tensor log_a = torch::log_softmax(together.attention_logits, 2);
  const torch::Tensor padding = together.mask.logical_not().unsqueeze(1);
  const torch::Tensor loss = (log_a.exp() * log_a.masked_fill(padding, 0.0)).sum() + together.logits.sum();
  loss.backward();
  for (const auto& p : model->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>()) << p.key();
  }
}

TEST(AttentionMil, RefusesBadOptionsAndInputs) {
  auto error_of = [](const std::function<void()>& f) -> std::string {
    try {
      f();
    } catch (const std::exception& e) {
      return e.what();
    }
    return "(no exception)";
  };
  MilModelOptions o;
  o.hidden = {256};
  o.heads = 3;
  EXPECT_NE(error_of([&] { make(o, {1, 28, 28}); }).find("model.mil.heads = 3 must divide the embedding size 256"),
            std::string::npos);
  o.heads = 1;
  o.encoder = "cnn";
  EXPECT_NE(error_of([&] { make(o, {20}); }).find("needs image instances"), std::string::npos);
  o.channels = {8, 8, 8};
  EXPECT_NE(error_of([&] { make(o, {1, 28, 28}); }).find("too many"), std::string::npos);
  o.encoder = "mlp";
  o.attention = "dot";
  EXPECT_NE(error_of([&] { make(o, {4}); }).find("gated or plain"), std::string::npos);
  o.attention = "plain";
  AttentionMil model = make(o, {4});
  EXPECT_NE(error_of([&] { model->forward(torch::zeros({3, 4}), {2, 0, 1}); }).find("a bag has 0 instances"),
            std::string::npos);
  EXPECT_NE(error_of([&] { model->forward(torch::zeros({3, 4}), {2, 2}); }).find("expected 4 instances"),
            std::string::npos);
  EXPECT_NE(error_of([&] { model->forward(torch::zeros({3, 4}), {}); }).find("no bags"), std::string::npos);
}

}  // namespace
}  // namespace reglab::models

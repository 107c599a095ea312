// Golden tests for the `aem` plugin (Attention Entropy Maximization), through
// the probe's mil steps: loss, gradient with respect to the bag logits and to
// the attention logits.
//
// Expected values: by hand for the two-instance case below, otherwise the
// loss lines of the official train_one_epoch (dazhangyu123/AEM @ 4a928a8,
// main.py) run in Debian's python3-torch 1.13 on the attention each official
// model returns — ABMIL's A_out.unsqueeze(0), [1, 1, N], summed; MHA's
// attn_out[0], [heads, 1, N], summed and divided by attn.shape[0]:
//
//   criterion = torch.nn.CrossEntropyLoss()
//   def official(z, y, attn, lam, mha, dtype):
//       z = torch.tensor(z, dtype=dtype, requires_grad=True)
//       attn = torch.tensor(attn, dtype=dtype, requires_grad=True)
//       bag_loss = criterion(z, torch.tensor(y))
//       div_loss = torch.sum(F.softmax(attn, dim=-1) * F.log_softmax(attn, dim=-1))
//       if mha: div_loss = div_loss / attn.shape[0]
//       loss = lam * div_loss + bag_loss; loss.backward()
//       return loss.item(), z.grad.tolist(), attn.grad.tolist()
//
// For B bags per step (padded, our extension) each bag went through
// official(...) alone and the losses and gradients were averaged over bags.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "config/schema.h"
#include "methods/golden_cases.h"
#include "methods/method_harness.h"
#include "plugins/method_handle.h"
#include "probe/probe.h"

namespace reglab::testing {
namespace {

using nlohmann::json;

json probe(const json& request) { return probe::run_probe(request, build_plugin("aem")); }

// Flattens a nested JSON list of numbers.
std::vector<double> flat(const json& j) {
  std::vector<double> out;
  if (j.is_array()) {
    for (const json& e : j) {
      const std::vector<double> inner = flat(e);
      out.insert(out.end(), inner.begin(), inner.end());
    }
  } else {
    out.push_back(j.get<double>());
  }
  return out;
}

void expect_flat_near(const json& actual, const std::vector<double>& expected, double tol, const char* what) {
  const std::vector<double> a = flat(actual);
  ASSERT_EQ(a.size(), expected.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], expected[i], tol) << what << "[" << i << "]";
}

class AemDtype : public ::testing::TestWithParam<torch::ScalarType> {
 protected:
  double tol() const { return GetParam() == torch::kDouble ? golden::kTol64 : golden::kTol32; }
  const char* dtype_name() const { return GetParam() == torch::kDouble ? "float64" : "float32"; }
};

TEST(Aem, DeclaresLambdaAndTheMilParadigm) {
  const PluginInfo& info = *build_plugin("aem").info;
  EXPECT_STREQ(info.name, "aem");
  EXPECT_EQ(info.paradigms, static_cast<std::uint32_t>(kMil));
  ASSERT_EQ(info.num_params, 1u);
  EXPECT_STREQ(info.params[0].name, "lambda");
  EXPECT_EQ(info.params[0].type, ParamType::kFloat);
  EXPECT_STREQ(info.params[0].default_value, "0.1");
  EXPECT_TRUE(info.params[0].has_min);
  EXPECT_FALSE(info.params[0].has_max);
  EXPECT_EQ(info.params[0].min, 0.0);
}

// z = (0, ln 3), y = 1; one head over A = (0, ln 3): a = (¼, ¾).
//   CE = ln(4/3), ∂CE/∂z = (¼, −¼);
//   Σ a log a = ¾ ln 3 − ln 4, entropy H = ln 4 − ¾ ln 3;
//   ∂/∂A_n = a_n (log a_n + H) = (−(3/16) ln 3, +(3/16) ln 3), times λ = 0.1.
TEST(Aem, HandCaseWithTheDefaultLambda) {
  const double ln3 = std::log(3.0);
  const json out = probe({{"method", "aem"},
                          {"logits", {{0.0, ln3}}},
                          {"labels", {1}},
                          {"attention_logits", {{{0.0, ln3}}}}});
  EXPECT_EQ(out["paradigm"], "mil");
  EXPECT_EQ(out["params"]["lambda"], 0.1);
  const json& s = out["steps"][0];
  EXPECT_NEAR(s["loss"].get<double>(), std::log(4.0 / 3.0) + 0.1 * (0.75 * ln3 - std::log(4.0)), 1e-15);
  expect_flat_near(s["grad_logits"], {0.25, -0.25}, 1e-15, "grad_logits");
  expect_flat_near(s["grad_attention_logits"], {-0.1 * 3.0 / 16.0 * ln3, 0.1 * 3.0 / 16.0 * ln3}, 1e-15,
                   "grad_attention_logits");
}

TEST_P(AemDtype, SingleHeadAsTheOfficialAbmilLoss) {
  const json out = probe({{"method", "aem"},
                          {"dtype", dtype_name()},
                          {"logits", {{0.3, -0.8}}},
                          {"labels", {1}},
                          {"attention_logits", {{{0.5, -1.2, 2.0, 0.0, 0.7}}}}});
  const json& s = out["steps"][0];
  EXPECT_NEAR(s["loss"].get<double>(), 1.2707411400360253, tol());
  expect_flat_near(s["grad_logits"], {0.7502601055951177, -0.7502601055951176}, tol(), "grad_logits");
  expect_flat_near(s["grad_attention_logits"],
                   {-0.011317407174361103, -0.006212582662378693, 0.039004727958226904, -0.010912044554866862,
                    -0.010562693566620242},
                   tol(), "grad_attention_logits");
}

// Four heads over three instances, λ = 0.2: the sum is divided by the heads.
TEST_P(AemDtype, MultiHeadAsTheOfficialMhaLoss) {
  const json out = probe({{"method", "aem"},
                          {"dtype", dtype_name()},
                          {"params", {{"lambda", 0.2}}},
                          {"logits", {{1.1, 0.4}}},
                          {"labels", {0}},
                          {"attention_logits",
                           {{{0.2, -0.5, 1.4}, {2.0, 2.0, -1.0}, {0.0, 0.3, 0.1}, {-3.0, 1.5, 0.5}}}}});
  const json& s = out["steps"][0];
  EXPECT_NEAR(s["loss"].get<double>(), 0.2370500048919979, tol());
  expect_flat_near(s["grad_logits"], {-0.33181222783183384, 0.3318122278318339}, tol(), "grad_logits");
  expect_flat_near(s["grad_attention_logits"],
                   {-0.007837140864097347, -0.007500187659051894, 0.015337328523149247, 0.0017774210346592136,
                    0.0017774210346592136, -0.0035548420693184233, -0.002159105238760241, 0.0029459202760232345,
                    -0.0007868150372629959, -0.0016905205195275436, 0.010987271861032833, -0.00929675134150529},
                   tol(), "grad_attention_logits");
}

// Two bags of 4 and 2 instances, two heads, padded to 4 with −inf and a mask:
// the mean over bags of each bag's official loss; padding gets no gradient.
TEST_P(AemDtype, PaddedBagsAverageTheirOwnLosses) {
  const json out = probe({{"method", "aem"},
                          {"dtype", dtype_name()},
                          {"logits", {{0.6, -0.1}, {-0.2, 0.9}}},
                          {"labels", {1, 0}},
                          {"attention_logits",
                           {{{0.3, -0.4, 1.2, 0.8}, {-1.0, 0.5, 0.0, 2.2}}, {{1.5, -0.5, "-inf", "-inf"}, {0.0, 0.25, "-inf", "-inf"}}}},
                          {"attention_mask", {{1, 1, 1, 1}, {1, 1, 0, 0}}}});
  const json& s = out["steps"][0];
  EXPECT_NEAR(s["loss"].get<double>(), 1.1678617479624471, tol());
  expect_flat_near(s["grad_logits"],
                   {0.3340938860840831, -0.3340938860840831, -0.3751300527975588, 0.37513005279755884}, tol(),
                   "grad_logits");
  expect_flat_near(s["grad_attention_logits"],
                   {-0.002141009585401157, -0.0026136636270581216, 0.004607643546459516, 0.0001470296659997568,
                    -0.002052070823033002, -0.00406229491016926, -0.003501973217528692, 0.009616338950730954,
                    0.005249679270175326, -0.005249679270175326, 0.0, 0.0, -0.001538338017109992,
                    0.0015383380171099888, 0.0, 0.0},
                   tol(), "grad_attention_logits");
}

INSTANTIATE_TEST_SUITE_P(Dtypes, AemDtype, ::testing::Values(torch::kDouble, torch::kFloat),
                         [](const auto& info) { return info.param == torch::kDouble ? "float64" : "float32"; });

// λ = 0 is ABMIL's cross-entropy: same loss as abmil, no attention gradient.
TEST(Aem, LambdaZeroIsTheAbmilLoss) {
  const json request = {{"logits", {{0.3, -0.8}}}, {"labels", {1}}, {"attention_logits", {{{0.5, -1.2, 2.0, 0.0, 0.7}}}}};
  json aem = request;
  aem["params"] = {{"lambda", 0.0}};
  const json a = probe(aem);
  const json b = probe::run_probe(request, build_plugin("abmil"));
  EXPECT_NEAR(a["steps"][0]["loss"].get<double>(), 1.3873353251154308, 1e-15);
  EXPECT_NEAR(b["steps"][0]["loss"].get<double>(), 1.3873353251154308, 1e-15);
  expect_flat_near(a["steps"][0]["grad_attention_logits"], {0, 0, 0, 0, 0}, 0.0, "grad_attention_logits");
  expect_flat_near(b["steps"][0]["grad_logits"], flat(a["steps"][0]["grad_logits"]), 1e-15, "grad_logits");
}

TEST(Aem, RefusesMissingOrMisshapenAttention) {
  auto error_of = [](const json& request) -> std::string {
    try {
      probe(request);
    } catch (const std::exception& e) {
      return e.what();
    }
    return "(no exception)";
  };
  const json z = {{0.0, 1.0}};
  EXPECT_NE(error_of({{"logits", z}, {"labels", {0}}}).find("attention_logits is missing"), std::string::npos);
  EXPECT_NE(error_of({{"logits", z}, {"labels", {0}}, {"attention_logits", {{0.0, 1.0}}}}).find("attention_logits must be"),
            std::string::npos);
  // An empty bag: nothing to attend to.
  EXPECT_NE(error_of({{"logits", z}, {"labels", {0}}, {"attention_logits", {{{0.0, 1.0}}}}, {"attention_mask", {{0, 0}}}})
                .find("attention_mask[0]: the bag is empty"),
            std::string::npos);
  EXPECT_NE(error_of({{"paradigm", "classify"}, {"logits", z}, {"labels", {0}}}).find("does not support the classify"),
            std::string::npos);
  EXPECT_NE(error_of({{"paradigm", "tta"}, {"logits", z}, {"labels", {0}}}).find("does not support the tta paradigm"),
            std::string::npos);
  EXPECT_NE(error_of({{"paradigm", "rlvr"}, {"logits", z}, {"labels", {0}}}).find("does not support the rlvr paradigm"),
            std::string::npos);
  EXPECT_NE(error_of({{"paradigm", "sft"}, {"logits", z}, {"labels", {0}}}).find("paradigm must be \"classify\", \"mil\""),
            std::string::npos);
  EXPECT_NE(error_of({{"logits", z}, {"labels", {0}}, {"attention_logits", {{{0.0, 1.0}}}}, {"attention_mask", {{1, 2}}}})
                .find("attention_mask[0][1] = 2 is not 0 or 1"),
            std::string::npos);
  // A classify method's probe takes no attention.
  const json classify = {{"method", "ce"}, {"logits", z}, {"labels", {0}}, {"attention_logits", {{{0.0, 1.0}}}}};
  EXPECT_NE(([&]() -> std::string {
              try {
                probe::run_probe(classify, build_plugin("ce"));
              } catch (const std::exception& e) {
                return e.what();
              }
              return "(no exception)";
            })()
                .find("attention_logits is only given with \"paradigm\": \"mil\""),
            std::string::npos);
  // Called directly, with no attention at all: the hook names the output.
  MethodSession session("aem", "{}", 1, 2, 1, torch::kDouble);
  EXPECT_NE(([&]() -> std::string {
              try {
                session.step(torch::zeros({1, 2}, torch::kDouble), {0}, {0});
              } catch (const std::exception& e) {
                return e.what();
              }
              return "(no exception)";
            })()
                .find("attention_logits"),
            std::string::npos);
}

// Bad mil settings are refused before anything runs, with file, line and key:
// λ < 0 (the plugin's schema), an empty bag size, a target class outside
// 0–9, heads that do not divide the embedding.
TEST(Aem, BadMilSettingsAreRejectedAtValidation) {
  const config::MethodLookup lookup = [](const std::string& name) -> std::optional<config::MethodSchema> {
    if (name != "aem") return std::nullopt;
    const PluginInfo& info = *build_plugin(name).info;
    return config::MethodSchema{info.name, info.paradigms,
                                std::vector<ParamSpec>(info.params, info.params + info.num_params)};
  };
  const config::MethodNames names = [] { return std::vector<std::string>{"aem"}; };
  config::Document doc = config::parse_toml_string(
      "[task]\n"                        // 1
      "paradigm = \"mil\"\n"            // 2
      "[data.bags]\n"                   // 3
      "min_size = 0\n"                  // 4
      "targets = [3, 10]\n"             // 5
      "[model]\n"                       // 6
      "hidden = [256]\n"                // 7
      "mil = { heads = 3 }\n"           // 8
      "[method]\n"                      // 9
      "name = \"aem\"\n"                // 10
      "lambda = -0.1\n",                // 11
      "mil.toml");
  std::vector<config::Issue> issues;
  config::validate_trial(doc.tree, doc.locations, lookup, names, issues);
  std::vector<std::string> text;
  for (const config::Issue& issue : issues) text.push_back(issue.str());
  ASSERT_EQ(text.size(), 4u) << ::testing::PrintToString(text);
  auto has = [&](const std::string& prefix, const std::string& part) {
    for (const std::string& t : text)
      if (t.rfind(prefix, 0) == 0 && t.find(part) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(has("mil.toml:4:12: key 'data.bags.min_size': ", "expected a value >= 1, got 0"))
      << ::testing::PrintToString(text);
  EXPECT_TRUE(has("mil.toml:5:15: key 'data.bags.targets': ", "element 1: expected a value in [0, 9], got 10"))
      << ::testing::PrintToString(text);
  EXPECT_TRUE(has("mil.toml:8:", "key 'model.mil.heads': 3 heads do not divide the instance embedding size 256"))
      << ::testing::PrintToString(text);
  EXPECT_TRUE(has("mil.toml:11:10: key 'method.lambda': ", "expected a value >= 0.0, got -0.1"))
      << ::testing::PrintToString(text);
  EXPECT_THROW(MethodSession("aem", R"({"lambda": -0.5})", 1, 2, 1, torch::kDouble), std::invalid_argument);
}

}  // namespace
}  // namespace reglab::testing

// Tests of the `weight_compander` plugin (Cakaj et al. 2023, from the paper)
// and of the model hook it uses (Method::transform_model / before_forward).
//
// The numbers of the tiny Linear cases come from an independent derivation
// in Debian's python3-torch 1.13, float64, without any re-parameterisation:
// the plain layer W₀ = [[0.3, −0.2], [0.1, 0.5]], bias (0.05, −0.1), inputs
// x = [[1, −2], [0.5, 0.25]], labels (1, 0), loss F.cross_entropy(x·Wᵀ + bias, y);
// dL/dW and dL/dbias by autograd on W and bias themselves; then by hand:
//   V₀ = b·tan(W₀/a),  dW/dV = (a/b)/(1 + (V/b)²) = (a/b)·cos²(W/a),
//   dW/da = atan(V/b) = W/a,  dW/db = −a·V/(b² + V²),
// the weight-decay gradient wd·W added to dL/dW before the chain rule, one
// SGD step V₁ = V₀ − lr·(dL/dW + wd·W₀)·dW/dV (momentum's first step is the
// gradient itself), bias₁ = bias − lr·(dL/dbias + wd·bias), and
// W₁ = a·atan(V₁/b), logits x·W₁ᵀ + bias₁.
#include <gtest/gtest.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/serialize.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/schema.h"
#include "data/dataset.h"
#include "methods/method_harness.h"
#include "metrics/metrics.h"
#include "models/models.h"
#include "paradigms/classify.h"
#include "paradigms/optim.h"
#include "plugins/loader.h"
#include "plugins/method_handle.h"
#include "reglab/method.h"
#include "runner/trial_env.h"
#include "store/store.h"

namespace reglab::testing {
namespace {

namespace fs = std::filesystem;
using config::Json;

constexpr double kTol = 1e-12;
const Rows kW0 = {{0.3, -0.2}, {0.1, 0.5}};
const std::vector<double> kBias0 = {0.05, -0.1};
const Rows kX = {{1.0, -2.0}, {0.5, 0.25}};
const std::vector<std::int64_t> kY = {1, 0};

// (a, b) = (1.0, 0.6), the defaults.
const Rows kV0 = {{0.18560174976577395, -0.1216260213052035}, {0.06020080325127033, 0.32778149390627426}};
const double kLoss = 1.2832871456324413;
const Rows kGradV = {{0.46494599680513776, -1.4601826928061759}, {-0.5043587717541403, 1.1707711393544251}};
// SGD lr 0.5, momentum 0.9, weight decay 0.01.
const Rows kV1 = {{-0.04915291815543202, 0.6100662092595536}, {0.3115551613875733, -0.2608130389081636}};
const std::vector<double> kBias1 = {-0.042923504461711434, -0.006826495538288568};
const Rows kLogitsAfter = {{-1.7120959020042192, 1.2922052357089722}, {0.11463616868665442, 0.13012923868399032}};

// Learnable, starting from (a, b) = (0.5, 1.0), weight decay 0.01, SGD lr 0.5
// without momentum: a would become −0.2035..., so it is clamped to 1e-6.
const Rows kV0Learn = {{0.6841368083416923, -0.4227932187381618}, {0.2027100355086725, 1.5574077246549023}};
const double kGradA = 1.4070188919584066;
const double kGradB = -0.4146780751474062;
const Rows kGradVLearn = {{0.10512691681344641, -0.38774420613983435}, {-0.1463184294382849, 0.13386441557564685}};
const double kB1Learn = 1.207339037573703;

class NullLog final : public Logger {
 public:
  void log(LogLevel level, std::string_view m) override { lines.push_back(std::string(m)); }
  std::vector<std::string> lines;
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

torch::Tensor rows(const Rows& r) { return make_logits(r, torch::kDouble); }

// Sequential{Linear(2, 2)} in float64 holding W₀ and bias₀.
torch::nn::Sequential tiny_linear() {
  torch::nn::Sequential model(torch::nn::Linear(2, 2));
  model->to(torch::kDouble);
  auto linear = model->ptr<torch::nn::LinearImpl>(0);
  torch::NoGradGuard no_grad;
  linear->weight.copy_(rows(kW0));
  linear->bias.copy_(torch::tensor(kBias0, torch::kDouble));
  return model;
}

torch::Tensor param(torch::nn::Module& m, const std::string& name) {
  const torch::Tensor* t = m.named_parameters().find(name);
  if (t == nullptr) throw std::out_of_range("no parameter '" + name + "'");
  return *t;
}

// A method set up and applied to a model the way the classify paradigm does
// it: transform_model, then every forward behind before_forward.
struct Transformed {
  std::unique_ptr<MethodSession> session;
  std::vector<ParamGroup> groups;
  torch::nn::Sequential model;
  NullLog log;
  NullSink sink;

  Transformed(const std::string& method, const std::string& params, torch::nn::Sequential plain,
              double weight_decay, const std::string& optimizer = "sgd")
      : session(std::make_unique<MethodSession>(method, params, 4, 2, 1, torch::kDouble)) {
    plugins::MethodHandle* h = &session->handle();
    groups = h->transform_model(*plain, ModelContext{optimizer, weight_decay});
    model = groups.empty() ? plain : models::with_before_forward(plain, [h](bool t) { h->before_forward(t); });
  }

  // forward, training_loss, backward, optimizer step, after_optimizer_step.
  torch::Tensor train_step(torch::optim::Optimizer* opt, const torch::Tensor& x, const std::vector<std::int64_t>& y) {
    const Batch batch{x, torch::tensor(y, torch::kLong), torch::arange(static_cast<std::int64_t>(y.size()))};
    Outputs out;
    out.set("logits", model->forward(x));
    const StepContext step{0, 1, 0, log, sink};
    torch::Tensor loss = session->handle().training_loss(batch, out, step);
    if (opt != nullptr) opt->zero_grad();
    loss.backward();
    if (opt != nullptr) opt->step();
    session->handle().after_optimizer_step(batch, out, step);
    return loss.detach();
  }
};

paradigms::OptimOptions sgd(double lr, double momentum, double weight_decay) {
  paradigms::OptimOptions o;
  o.name = "sgd";
  o.lr = lr;
  o.momentum = momentum;
  o.weight_decay = weight_decay;
  return o;
}

TEST(WeightCompander, DeclaresItsParameters) {
  const PluginInfo& info = *build_plugin("weight_compander").info;
  EXPECT_STREQ(info.name, "weight_compander");
  EXPECT_TRUE(info.paradigms & kClassify);
  ASSERT_EQ(info.num_params, 3u);
  EXPECT_STREQ(info.params[0].name, "a");
  EXPECT_STREQ(info.params[0].default_value, "1.0");
  EXPECT_TRUE(info.params[0].has_min);
  EXPECT_GT(info.params[0].min, 0.0);
  EXPECT_STREQ(info.params[1].name, "b");
  EXPECT_STREQ(info.params[1].default_value, "0.6");
  EXPECT_TRUE(info.params[1].has_min);
  EXPECT_GT(info.params[1].min, 0.0);
  EXPECT_STREQ(info.params[2].name, "learnable");
  EXPECT_EQ(info.params[2].type, ParamType::kBool);
  EXPECT_STREQ(info.params[2].default_value, "false");
}

// V replaces W as the trained tensor; the model computes what it did before;
// the gradient reaching V is dL/dW·(a/b)·cos²(W/a).
TEST(WeightCompander, LinearLayerByHand) {
  Transformed t("weight_compander", "{}", tiny_linear(), 0.0);
  torch::nn::Module& m = *t.model;
  const torch::Tensor v = param(m, "0.weight_v");
  EXPECT_THROW(param(m, "0.weight"), std::out_of_range);
  EXPECT_EQ(m.named_parameters().size(), 2u);  // weight_v and the untouched bias
  expect_rows_near(v, kV0, kTol);

  // One group for the bias with the configured decay, one for V without.
  ASSERT_EQ(t.groups.size(), 2u);
  ASSERT_EQ(t.groups[0].params.size(), 1u);
  EXPECT_TRUE(t.groups[0].params[0].is_same(param(m, "0.bias")));
  ASSERT_EQ(t.groups[1].params.size(), 1u);
  EXPECT_TRUE(t.groups[1].params[0].is_same(v));
  EXPECT_EQ(t.groups[1].weight_decay, 0.0);

  const torch::Tensor plain = tiny_linear()->forward(rows(kX));
  const torch::Tensor x = rows(kX);
  EXPECT_TRUE(torch::allclose(t.model->forward(x), plain, 0, 1e-14));

  const torch::Tensor loss = t.train_step(nullptr, x, kY);
  EXPECT_NEAR(loss.item<double>(), kLoss, kTol);
  expect_rows_near(v.grad(), kGradV, kTol);
}

// One step of the optimizer the paradigm builds from the groups: V moves by
// the gradient with decay on W (not on V), the bias with its own decay, and
// the next forward already uses W₁ = a·atan(V₁/b).
TEST(WeightCompander, SgdStepDecaysTheWeightNotV) {
  Transformed t("weight_compander", "{}", tiny_linear(), 0.01);
  ASSERT_EQ(t.groups.size(), 2u);
  EXPECT_EQ(t.groups[0].weight_decay, 0.01);
  EXPECT_EQ(t.groups[1].weight_decay, 0.0);
  auto opt = paradigms::make_optimizer(sgd(0.5, 0.9, 0.01), t.groups);
  t.train_step(opt.get(), rows(kX), kY);
  torch::nn::Module& m = *t.model;
  expect_rows_near(param(m, "0.weight_v"), kV1, kTol);
  expect_rows_near(param(m, "0.bias").unsqueeze(0), {kBias1}, kTol);
  {
    torch::NoGradGuard no_grad;
    t.model->eval();
    expect_rows_near(t.model->forward(rows(kX)), kLogitsAfter, kTol);
  }
}

// Learnable (a, b): both get the chain-rule gradient (decay on W included)
// and stay positive; the one an SGD step drives below zero is clamped.
TEST(WeightCompander, LearnableScalesGetGradientsAndStayPositive) {
  Transformed t("weight_compander", R"({"learnable": true, "a": 0.5, "b": 1.0})", tiny_linear(), 0.01);
  torch::nn::Module& m = *t.model;
  const torch::Tensor v = param(m, "0.weight_v");
  const torch::Tensor a = param(m, "0.weight_a");
  const torch::Tensor b = param(m, "0.weight_b");
  EXPECT_EQ(a.dim(), 0);
  EXPECT_EQ(a.item<double>(), 0.5);
  EXPECT_EQ(b.item<double>(), 1.0);
  expect_rows_near(v, kV0Learn, kTol);
  ASSERT_EQ(t.groups.size(), 3u);
  ASSERT_EQ(t.groups[2].params.size(), 2u);
  EXPECT_TRUE(t.groups[2].params[0].is_same(a));
  EXPECT_TRUE(t.groups[2].params[1].is_same(b));
  EXPECT_EQ(t.groups[2].weight_decay, 0.0);
  EXPECT_TRUE(torch::allclose(t.model->forward(rows(kX)), tiny_linear()->forward(rows(kX)), 0, 1e-14));

  auto opt = paradigms::make_optimizer(sgd(0.5, 0.0, 0.01), t.groups);
  // The step's gradients, read in a hook before the optimizer uses them.
  torch::Tensor grad_a, grad_b, grad_v;
  a.register_hook([&](const torch::Tensor& g) { grad_a = g.clone(); });
  b.register_hook([&](const torch::Tensor& g) { grad_b = g.clone(); });
  v.register_hook([&](const torch::Tensor& g) { grad_v = g.clone(); });
  t.train_step(opt.get(), rows(kX), kY);
  EXPECT_NEAR(grad_a.item<double>(), kGradA, kTol);
  EXPECT_NEAR(grad_b.item<double>(), kGradB, kTol);
  expect_rows_near(grad_v, kGradVLearn, kTol);

  EXPECT_EQ(a.item<double>(), 1e-6);  // 0.5 − 0.5·1.407... < 0, clamped
  EXPECT_NEAR(b.item<double>(), kB1Learn, kTol);
  EXPECT_TRUE(torch::isfinite(t.model->forward(rows(kX))).all().item<bool>());
}

// The cnn: every convolution and the classifier are re-parameterised, the
// BatchNorm and biases are the same tensors as before with the configured
// decay, outputs (train and eval mode) match the untransformed model, and
// V's gradient is the plain model's dL/dW, plus the decay wd·W, times
// (a/b)·cos²(W/a); the untouched parameters' gradients are the plain ones.
TEST(WeightCompander, ConvolutionalModel) {
  models::ModelOptions o;
  o.arch = "cnn";
  o.channels = {4, 6};
  auto build = [&] {
    torch::manual_seed(11);
    return models::make_model(o, {1, 8, 8}, 3);
  };
  torch::nn::Sequential plain = build();
  torch::nn::Sequential base = build();
  std::map<std::string, torch::Tensor> before;
  for (const auto& p : base->named_parameters()) before[p.key()] = p.value();
  Transformed t("weight_compander", R"({"a": 0.7, "b": 0.7})", base, 1e-3);

  std::set<std::string> names;
  for (const auto& p : t.model->named_parameters()) names.insert(p.key());
  EXPECT_EQ(names, (std::set<std::string>{"0.weight_v", "1.weight", "1.bias", "4.weight_v", "5.weight", "5.bias",
                                          "10.weight_v", "10.bias"}));
  ASSERT_EQ(t.groups.size(), 2u);
  EXPECT_EQ(t.groups[0].weight_decay, 1e-3);
  std::vector<std::string> kept = {"1.weight", "1.bias", "5.weight", "5.bias", "10.bias"};
  ASSERT_EQ(t.groups[0].params.size(), kept.size());
  for (std::size_t i = 0; i < kept.size(); ++i)
    EXPECT_TRUE(t.groups[0].params[i].is_same(before.at(kept[i]))) << kept[i];
  EXPECT_EQ(t.groups[1].params.size(), 3u);

  torch::manual_seed(3);
  const torch::Tensor x = torch::randn({5, 1, 8, 8});
  const torch::Tensor y = torch::tensor({0, 2, 1, 1, 0}, torch::kLong);
  {
    torch::NoGradGuard no_grad;
    plain->eval();
    t.model->eval();
    EXPECT_TRUE(torch::allclose(t.model->forward(x), plain->forward(x), 1e-5, 1e-6));
    plain->train();
    t.model->train();
  }
  const torch::Tensor plain_loss = torch::nn::functional::cross_entropy(plain->forward(x), y);
  plain_loss.backward();
  const torch::Tensor loss = torch::nn::functional::cross_entropy(t.model->forward(x), y);
  loss.backward();
  EXPECT_NEAR(loss.item<double>(), plain_loss.item<double>(), 1e-6);
  for (const std::string layer : {"0", "4", "10"}) {
    const torch::Tensor w0 = param(*plain, layer + ".weight").detach();
    const torch::Tensor grad_w = param(*plain, layer + ".weight").grad() + 1e-3 * w0;  // the decay on W
    const torch::Tensor expected = grad_w * (0.7 / 0.7) * torch::cos(w0 / 0.7).pow(2);
    EXPECT_TRUE(torch::allclose(param(*t.model, layer + ".weight_v").grad(), expected, 1e-4, 1e-7)) << layer;
  }
  for (const std::string& k : kept)
    EXPECT_TRUE(torch::allclose(param(*t.model, k).grad(), param(*plain, k).grad(), 1e-4, 1e-7)) << k;
}

// |W₀| must stay below a·π/2; the layer that breaks it is named and the
// model is left as it was. A second transformation of the same model is
// refused too.
TEST(WeightCompander, RefusesWeightsOutsideTheRange) {
  torch::nn::Sequential model = tiny_linear();
  {
    torch::NoGradGuard no_grad;
    model->ptr<torch::nn::LinearImpl>(0)->weight[1][0].fill_(-2.0);
  }
  const std::string msg = error_of([&] { Transformed("weight_compander", "{}", model, 0.0); });
  EXPECT_NE(msg.find("method 'weight_compander'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("failed in transform_model"), std::string::npos) << msg;
  EXPECT_NE(msg.find("layer '0' (Linear) has an initial weight of magnitude 2.000000"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("a*pi/2 = 1.570796 with a = 1.000000; choose a > 1.273240"), std::string::npos) << msg;
  EXPECT_NO_THROW(param(*model, "0.weight"));
  EXPECT_THROW(param(*model, "0.weight_v"), std::out_of_range);
  // With a large enough a the same model is accepted, once.
  torch::nn::Sequential ok = tiny_linear();
  Transformed first("weight_compander", "{}", ok, 0.0);
  EXPECT_NE(error_of([&] { Transformed("weight_compander", "{}", ok, 0.0); }).find("already transformed"),
            std::string::npos);
  EXPECT_NO_THROW(Transformed("weight_compander", R"({"a": 1.3})", model, 0.0));
}

// Non-positive a or b is refused by the schema, with file, line and key.
TEST(WeightCompander, BadScalesAreRejectedAtValidation) {
  const config::MethodLookup lookup = [](const std::string& name) -> std::optional<config::MethodSchema> {
    if (name != "weight_compander") return std::nullopt;
    const PluginInfo& info = *build_plugin(name).info;
    return config::MethodSchema{info.name, info.paradigms,
                                std::vector<ParamSpec>(info.params, info.params + info.num_params)};
  };
  const config::MethodNames names = [] { return std::vector<std::string>{"weight_compander"}; };
  config::Document doc =
      config::parse_toml_string("[method]\nname = \"weight_compander\"\na = 0.0\nb = -0.5\n", "wc.toml");
  std::vector<config::Issue> issues;
  config::validate_trial(doc.tree, doc.locations, lookup, names, issues);
  ASSERT_EQ(issues.size(), 2u);
  EXPECT_EQ(issues[0].str().rfind("wc.toml:3:5: key 'method.a': ", 0), 0u) << issues[0].str();
  EXPECT_EQ(issues[1].str().rfind("wc.toml:4:5: key 'method.b': ", 0), 0u) << issues[1].str();
  EXPECT_NE(issues[0].str().find(">= 1e-06"), std::string::npos) << issues[0].str();

  EXPECT_THROW(MethodSession("weight_compander", R"({"a": 0})", 1, 2, 1, torch::kDouble), std::invalid_argument);
  EXPECT_THROW(MethodSession("weight_compander", R"({"b": -1})", 1, 2, 1, torch::kDouble), std::invalid_argument);
}

// A method without the hook leaves the model alone: no groups, same
// parameters, so the paradigm trains model.parameters() as before.
TEST(WeightCompander, MethodsWithoutTheHookLeaveTheModelAlone) {
  torch::nn::Sequential model = tiny_linear();
  const auto params_before = model->parameters();
  Transformed t("ce", "{}", model, 0.01);
  EXPECT_TRUE(t.groups.empty());
  const auto params_after = t.model->parameters();
  ASSERT_EQ(params_after.size(), params_before.size());
  for (std::size_t i = 0; i < params_before.size(); ++i) EXPECT_TRUE(params_after[i].is_same(params_before[i]));
  EXPECT_EQ(t.model->named_children().size(), 1u);  // no before_forward layer
}

// ---- through the classify paradigm: checkpoint, resume, evaluation ----

Json trial_config(bool learnable) {
  return Json{{"seed", 3},
              {"task", {{"epochs", 2}, {"batch_size", 32}, {"checkpoint_every", 1}}},
              {"data",
               {{"dataset", "synthetic"},
                {"val_fraction", 0.1},
                {"synthetic", {{"samples", 240}, {"test_samples", 120}, {"features", 6}, {"classes", 3}}}}},
              {"model", {{"arch", "mlp"}, {"hidden", {12}}}},
              {"optim", {{"name", "sgd"}, {"lr", 0.2}, {"momentum", 0.9}, {"weight_decay", 5e-3}}},
              {"method", {{"name", "weight_compander"}, {"a", 0.9}, {"b", 0.8}, {"learnable", learnable}}}};
}

class TrialDir {
 public:
  TrialDir() {
    std::string tmpl = (fs::temp_directory_path() / "reglab-wc-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TrialDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Runs run_classify on `run_dir`, recording into run `run_id` of `db`;
// `stop` is polled between steps.
void run_trial(const Json& cfg, store::Store& db, std::int64_t run_id, const fs::path& run_dir,
               const std::function<bool()>& stop, NullLog& log) {
  runner::MetricRecorder recorder(&db, run_id);
  runner::TrialEnv env{cfg,
                       log,
                       recorder,
                       run_dir,
                       stop,
                       [](const Json&) {},
                       [] {},
                       [](const std::string&, const std::string&) {},
                       [](const std::string&, const fs::path&) {}};
  paradigms::run_classify(env);
}

double metric_at(store::Store& db, std::int64_t run_id, const std::string& key, std::int64_t step) {
  for (const auto& p : db.metrics(run_id, key))
    if (p.step == step) return p.value;
  throw std::out_of_range("no " + key + " at step " + std::to_string(step));
}

torch::serialize::InputArchive layer_archive(const fs::path& checkpoint, const std::string& layer) {
  torch::serialize::InputArchive top, model, out;
  top.load_from(checkpoint.string());
  top.read("model", model);
  model.read(layer, out);
  return out;
}

torch::Tensor read_tensor(torch::serialize::InputArchive& archive, const std::string& key) {
  torch::Tensor t;
  archive.read(key, t);
  return t;
}

class WeightCompanderTrial : public ::testing::TestWithParam<bool> {};

// Two epochs straight, and the same trial interrupted after epoch 1 then
// resumed from its checkpoint, end with identical parameters (V, and a, b
// when learned) and metrics; the evaluation metrics are those of the plain
// model with W = a·atan(V/b) taken from the checkpoint.
TEST_P(WeightCompanderTrial, ResumesFromCheckpointExactly) {
  const bool learnable = GetParam();
  const Json cfg = trial_config(learnable);
  TrialDir dir;
  store::Store db(dir.path() / "r.db");
  const std::int64_t sweep = db.upsert_sweep("wc", "", "");
  const std::int64_t straight = db.ensure_run(sweep, "straight", "", cfg.dump(), "weight_compander");
  const std::int64_t resumed = db.ensure_run(sweep, "resumed", "", cfg.dump(), "weight_compander");
  const fs::path dir_a = dir.path() / "a", dir_b = dir.path() / "b";
  fs::create_directories(dir_a);
  fs::create_directories(dir_b);

  NullLog log_a, log_b1, log_b2;
  run_trial(cfg, db, straight, dir_a, [] { return false; }, log_a);
  const fs::path ckpt_b = dir_b / "checkpoint.pt";
  EXPECT_THROW(run_trial(cfg, db, resumed, dir_b, [&] { return fs::exists(ckpt_b); }, log_b1), runner::Interrupted);
  ASSERT_TRUE(fs::exists(ckpt_b));
  torch::serialize::InputArchive after_epoch1 = layer_archive(ckpt_b, "1");
  const torch::Tensor v_epoch1 = read_tensor(after_epoch1, "weight_v");
  run_trial(cfg, db, resumed, dir_b, [] { return false; }, log_b2);
  bool said_resumed = false;
  for (const std::string& line : log_b2.lines) said_resumed |= line.find("resumed from") != std::string::npos;
  EXPECT_TRUE(said_resumed);

  for (const std::string key : {"train.loss", "val.nll", "test.nll", "test.acc"})
    EXPECT_EQ(metric_at(db, resumed, key, 2), metric_at(db, straight, key, 2)) << key;
  std::vector<std::string> keys = {"weight_v", "bias"};
  if (learnable) keys.insert(keys.end(), {"weight_a", "weight_b"});
  for (const std::string layer : {"1", "3"}) {
    torch::serialize::InputArchive a = layer_archive(dir_a / "checkpoint.pt", layer);
    torch::serialize::InputArchive b = layer_archive(ckpt_b, layer);
    torch::Tensor unused;
    EXPECT_FALSE(a.try_read("weight", unused)) << "the replaced weight is not saved";
    for (const std::string& key : keys)
      EXPECT_TRUE(torch::equal(read_tensor(a, key), read_tensor(b, key))) << layer << "." << key;
  }
  torch::serialize::InputArchive final_first = layer_archive(ckpt_b, "1");
  EXPECT_FALSE(torch::equal(read_tensor(final_first, "weight_v"), v_epoch1)) << "epoch 2 trained V";

  // The recorded test metrics are those of the plain mlp holding W = a·atan(V/b).
  const data::Dataset ds = data::load_dataset(paradigms::data_options_from(cfg.at("data")), 3);
  models::ModelOptions mo;
  mo.hidden = {12};
  torch::nn::Sequential plain = models::make_model(mo, ds.input_shape, ds.num_classes);
  {
    torch::NoGradGuard no_grad;
    for (const std::string layer : {"1", "3"}) {
      torch::serialize::InputArchive arch = layer_archive(dir_a / "checkpoint.pt", layer);
      const torch::Tensor v = read_tensor(arch, "weight_v");
      const torch::Tensor a = learnable ? read_tensor(arch, "weight_a") : torch::tensor(0.9f);
      const torch::Tensor b = learnable ? read_tensor(arch, "weight_b") : torch::tensor(0.8f);
      if (learnable) {
        EXPECT_NE(a.item<float>(), 0.9f) << "a was trained";
      }
      param(*plain, layer + ".weight").copy_(a * torch::atan(v / b));
      param(*plain, layer + ".bias").copy_(read_tensor(arch, "bias"));
    }
    plain->eval();
    const torch::Tensor logits = plain->forward(ds.test.x);
    EXPECT_NEAR(metrics::nll(logits, ds.test.y), metric_at(db, straight, "test.nll", 2), 1e-5);
    EXPECT_EQ(metrics::accuracy(logits, ds.test.y), metric_at(db, straight, "test.acc", 2));
  }
}

INSTANTIATE_TEST_SUITE_P(Scales, WeightCompanderTrial, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Learnable" : "Fixed"; });

}  // namespace
}  // namespace reglab::testing

#include "paradigms/mil.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/serialize.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <numbers>

#include "data/bags.h"
#include "data/dataset.h"
#include "metrics/auc.h"
#include "metrics/metrics.h"
#include "models/mil_models.h"
#include "paradigms/checkpoint.h"
#include "paradigms/device.h"
#include "paradigms/classify.h"
#include "paradigms/optim.h"
#include "plugins/loader.h"
#include "plugins/method_handle.h"
#include "util/util.h"

namespace reglab::paradigms {

namespace fs = std::filesystem;
using config::Json;

data::BagOptions bag_options_from(const Json& d) {
  data::BagOptions o;
  if (!d.contains("bags")) return o;
  const Json& b = d.at("bags");
  o.targets = b.value("targets", o.targets);
  o.size_mean = b.value("size_mean", o.size_mean);
  o.size_std = b.value("size_std", o.size_std);
  o.min_size = b.value("min_size", o.min_size);
  o.train_bags = b.value("train", o.train_bags);
  o.test_bags = b.value("test", o.test_bags);
  return o;
}

namespace {

// SplitMix64 finaliser: the bag streams are unrelated to the dataset's own
// split and to each other.
std::uint64_t mix(std::uint64_t seed, std::uint64_t stream) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ull * (stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
constexpr std::uint64_t kTrainBagStream = 101;
constexpr std::uint64_t kTestBagStream = 102;

models::MilModelOptions model_options_from(const Json& m) {
  models::MilModelOptions o;
  o.encoder = m.value("arch", o.encoder);
  o.hidden = m.value("hidden", o.hidden);
  o.channels = m.value("channels", o.channels);
  o.dropout = m.value("dropout", o.dropout);
  if (m.contains("mil")) {
    const Json& a = m.at("mil");
    o.attention = a.value("attention", o.attention);
    o.heads = a.value("heads", o.heads);
    o.attention_hidden = a.value("attention_hidden", o.attention_hidden);
  }
  return o;
}

struct Evaluation {
  double acc = 0, nll = 0, auc = 0, entropy = 0, max_weight = 0, instance_auc = 0;
};

// Every bag of `bags` in eval mode, in chunks of about `chunk_instances`
// instances (whole bags; padding within a chunk leaves each bag's result as
// it is alone).
Evaluation evaluate(models::AttentionMil& model, const data::BagSet& bags, std::int64_t chunk_instances,
                    torch::Device device, const std::function<void()>& before_forward) {
  torch::NoGradGuard no_grad;
  model->eval();
  std::vector<torch::Tensor> logits, weights, instance_labels;
  double entropy_sum = 0, max_sum = 0;
  const std::int64_t n = bags.size();
  for (std::int64_t first = 0; first < n;) {
    std::int64_t last = first, instances = 0;
    while (last < n && (last == first || instances + bags.bag_size(last) <= chunk_instances))
      instances += bags.bag_size(last++);
    const data::BagBatch batch = data::gather_bags(bags, torch::arange(first, last, torch::kInt64));
    before_forward();
    const models::MilOutput out = model->forward(batch.instances.to(device), batch.sizes);
    logits.push_back(out.logits.to(torch::kCPU));
    const metrics::AttentionSummary s = metrics::summarize_attention(out.attention, out.mask);
    entropy_sum += s.mean_entropy * static_cast<double>(last - first);
    max_sum += s.mean_max_weight * static_cast<double>(last - first);
    weights.push_back(out.attention.mean(1).masked_select(out.mask).to(torch::kCPU));
    instance_labels.push_back(batch.instance_labels);
    first = last;
  }
  model->train();
  const torch::Tensor z = torch::cat(logits);
  Evaluation e;
  e.acc = metrics::accuracy(z, bags.labels);
  e.nll = metrics::nll(z, bags.labels);
  e.auc = metrics::roc_auc(z.select(1, 1) - z.select(1, 0), bags.labels);
  e.entropy = entropy_sum / static_cast<double>(n);
  e.max_weight = max_sum / static_cast<double>(n);
  e.instance_auc = metrics::roc_auc(torch::cat(weights), torch::cat(instance_labels));
  return e;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

void run_mil(runner::TrialEnv& env) {
  const Json& cfg = env.config;
  const Json& task = cfg.at("task");
  const std::int64_t seed = cfg.value("seed", std::int64_t{0});
  const std::int64_t epochs = task.value("epochs", std::int64_t{10});
  const std::int64_t bags_per_step = task.value("bags_per_step", std::int64_t{1});
  const bool schedule_per_step = task.value("schedule_per_step", true);
  const std::int64_t eval_instances = task.value("eval_batch_size", std::int64_t{1000});
  const std::int64_t checkpoint_every = task.value("checkpoint_every", std::int64_t{1});
  const torch::Device device = trial_device(task);
  // task.threads > 0 overrides the runner's share: one-bag steps are too
  // small for a second intra-op thread to pay off.
  const std::int64_t threads = task.value("threads", std::int64_t{0});
  if (threads > 0) at::set_num_threads(static_cast<int>(threads));

  torch::manual_seed(static_cast<std::uint64_t>(seed));
  const auto t_load = std::chrono::steady_clock::now();
  const Json& data_cfg = cfg.at("data");
  const data::Dataset ds = data::load_dataset(data_options_from(data_cfg), static_cast<std::uint64_t>(seed));
  const data::BagOptions bag_options = bag_options_from(data_cfg);
  const data::BagSet train_bags = data::make_bags(ds.train, ds.num_classes, bag_options, bag_options.train_bags,
                                                  mix(static_cast<std::uint64_t>(seed), kTrainBagStream));
  const data::BagSet test_bags = data::make_bags(ds.test, ds.num_classes, bag_options, bag_options.test_bags,
                                                 mix(static_cast<std::uint64_t>(seed), kTestBagStream));
  env.log.info("bags: " + std::to_string(train_bags.size()) + " train (" +
               std::to_string(train_bags.labels.sum().item<std::int64_t>()) + " positive, " +
               std::to_string(train_bags.members.size(0)) + " instances from a pool of " +
               std::to_string(ds.train.size()) + "), " + std::to_string(test_bags.size()) + " test (" +
               std::to_string(test_bags.labels.sum().item<std::int64_t>()) + " positive, " +
               std::to_string(test_bags.members.size(0)) + " instances from " + std::to_string(ds.test.size()) +
               "), built in " + std::to_string(seconds_since(t_load)) + " s");

  const models::MilModelOptions model_options = model_options_from(cfg.at("model"));
  auto make_model = [&] {
    models::AttentionMil m(model_options, ds.input_shape);
    m->to(device);
    return m;
  };
  models::AttentionMil model = make_model();
  const OptimOptions oo = optim_options_from(cfg.at("optim"));

  const Json& method_cfg = cfg.at("method");
  const std::string method_name = method_cfg.at("name").get<std::string>();
  const plugins::LoadedPlugin& plugin = plugins::registry().get(method_name);
  env.method_version(method_name, plugin.info->version);
  const Params params = plugins::resolve_params(*plugin.info, method_cfg.dump());
  plugins::MethodHandle method(plugin);
  const MethodContext mctx{params, env.log, env.metrics, kMil,          train_bags.size(), model_options.num_classes,
                           epochs, device,  torch::kFloat};
  method.setup(mctx);

  // A method that re-parameterises the model trains its own groups and runs
  // before_forward ahead of every forward pass (reglab/method.h).
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  bool transformed = false;
  auto prepare_model = [&] {
    const std::vector<ParamGroup> groups = method.transform_model(*model, ModelContext{oo.name, oo.weight_decay});
    transformed = !groups.empty();
    optimizer = transformed ? make_optimizer(oo, groups) : make_optimizer(oo, model->parameters());
  };
  prepare_model();
  const std::function<void()> before_forward = [&] {
    if (transformed) method.before_forward(model->is_training());
  };

  const fs::path ckpt = env.run_dir / "checkpoint.pt";
  const LoopPosition resumed = resume_or_restart(ckpt, *model, *optimizer, method, env.log, [&] {
    torch::manual_seed(static_cast<std::uint64_t>(seed));
    model = make_model();
    prepare_model();
  });
  const std::int64_t start_epoch = resumed.next_epoch;
  std::int64_t step = resumed.step;

  const std::int64_t n = train_bags.size();
  const std::int64_t steps_per_epoch = (n + bags_per_step - 1) / bags_per_step;
  const bool per_step_lr = schedule_per_step && oo.schedule == "cosine";
  // The official AEM schedule: cosine at the fractional epoch, no warm-up.
  auto lr_at = [&](std::int64_t epoch, std::int64_t i) {
    if (!per_step_lr) return lr_at_epoch(oo, epoch, epochs);
    const double t = static_cast<double>(epoch) + static_cast<double>(i) / static_cast<double>(steps_per_epoch);
    return oo.eta_min + (oo.lr - oo.eta_min) * (1 + std::cos(std::numbers::pi * t / static_cast<double>(epochs))) / 2;
  };
  bool first_step_recorded = false;
  for (std::int64_t epoch = start_epoch; epoch < epochs; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    const double epoch_lr = lr_at(epoch, 0);
    set_lr(*optimizer, epoch_lr);
    StepContext sctx{epoch, epochs, step, env.log, env.metrics};

    // The order of an epoch depends only on (seed, epoch), so a resumed run
    // sees the same steps as an uninterrupted one.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<std::uint64_t>(seed) * 1000003ULL +
                                                        static_cast<std::uint64_t>(epoch));
    const torch::Tensor order = torch::randperm(n, gen, torch::kLong);
    double loss_sum = 0;
    torch::Tensor correct = torch::zeros({}, torch::TensorOptions().dtype(torch::kLong).device(device));
    model->train();
    for (std::int64_t i = 0; i < steps_per_epoch; ++i) {
      if (env.interrupted()) throw runner::Interrupted();
      if (per_step_lr && i > 0) set_lr(*optimizer, lr_at(epoch, i));
      const torch::Tensor ids = order.slice(0, i * bags_per_step, std::min((i + 1) * bags_per_step, n));
      const data::BagBatch bags = data::gather_bags(train_bags, ids);
      const Batch batch{bags.instances.to(device), bags.labels.to(device), ids.to(device)};
      before_forward();
      const models::MilOutput fwd = model->forward(batch.inputs, bags.sizes);
      Outputs outputs;
      outputs.set("logits", fwd.logits);
      outputs.set("attention_logits", fwd.attention_logits);
      outputs.set("attention_mask", fwd.mask);
      sctx.step = step;
      torch::Tensor loss = method.training_loss(batch, outputs, sctx);
      const double loss_value = loss.item<double>();
      if (!std::isfinite(loss_value))
        throw std::runtime_error("loss is " + std::to_string(loss_value) + " at epoch " + std::to_string(epoch + 1) +
                                 ", step " + std::to_string(step));
      optimizer->zero_grad();
      loss.backward();
      optimizer->step();
      method.after_optimizer_step(batch, outputs, sctx);
      if (!first_step_recorded) {
        first_step_recorded = true;
        if (env.spawned_at > 0) env.metrics.record_core("time.startup_s", util::now_seconds() - env.spawned_at, 0);
      }
      // Counted on the device and read once per epoch: no extra sync per step.
      correct += fwd.logits.detach().argmax(1).eq(batch.targets).sum();
      loss_sum += loss_value * static_cast<double>(ids.size(0));
      ++step;
    }
    sctx.step = step;
    method.on_epoch_end(sctx);
    const double train_s = seconds_since(t0);

    const std::int64_t e1 = epoch + 1;
    const Evaluation test = evaluate(model, test_bags, eval_instances, device, before_forward);
    auto& m = env.metrics;
    const double train_loss = loss_sum / static_cast<double>(n);
    m.record_core("train.loss", train_loss, e1);
    m.record_core("train.acc", static_cast<double>(correct.item<std::int64_t>()) / static_cast<double>(n), e1);
    m.record_core("test.acc", test.acc, e1);
    m.record_core("test.nll", test.nll, e1);
    m.record_core("test.auc", test.auc, e1);
    m.record_core("test.attention_entropy", test.entropy, e1);
    m.record_core("test.attention_max", test.max_weight, e1);
    m.record_core("test.instance_auc", test.instance_auc, e1);
    m.record_core("lr", epoch_lr, e1);
    m.record_core("time.train_s", train_s, e1);
    m.record_core("time.epoch_s", seconds_since(t0), e1);
    m.flush();

    if (checkpoint_every > 0 && (e1 % checkpoint_every == 0 || e1 == epochs)) {
      save_checkpoint(ckpt, *model, *optimizer, method.state_dict(), {e1, step});
      env.artifact("checkpoint", ckpt);
    }
    env.heartbeat();
    env.log.info("epoch " + std::to_string(e1) + "/" + std::to_string(epochs) + " train.loss " +
                 std::to_string(train_loss) + " test.acc " + std::to_string(test.acc) + " test.auc " +
                 std::to_string(test.auc) + " test.instance_auc " + std::to_string(test.instance_auc) + " (" +
                 std::to_string(train_s) + " s training)");
    env.report(Json{{"epoch", e1}, {"epochs", epochs}, {"metric", "test.auc"}, {"value", test.auc}});
  }
}

}  // namespace reglab::paradigms

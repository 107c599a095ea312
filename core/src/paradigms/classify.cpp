#include "paradigms/classify.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/functional/loss.h>
#include <torch/serialize.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <fstream>

#include "data/dataset.h"
#include "metrics/metrics.h"
#include "models/models.h"
#include "paradigms/checkpoint.h"
#include "paradigms/device.h"
#include "paradigms/optim.h"
#include "plugins/loader.h"
#include "plugins/method_handle.h"
#include "util/util.h"

namespace reglab::paradigms {

namespace fs = std::filesystem;
using config::Json;

data::DataOptions data_options_from(const Json& d) {
  data::DataOptions o;
  o.dataset = d.value("dataset", o.dataset);
  o.root = d.value("root", o.root);
  o.limit = d.value("limit", o.limit);
  o.test_limit = d.value("test_limit", o.test_limit);
  o.val_fraction = d.value("val_fraction", o.val_fraction);
  o.normalize = d.value("normalize", o.normalize);
  o.classes = d.value("classes", o.classes);
  if (d.contains("noise")) {
    const Json& n = d.at("noise");
    o.noise.kind = n.value("kind", o.noise.kind);
    o.noise.rate = n.value("rate", o.noise.rate);
    o.noise.class_map = n.value("class_map", o.noise.class_map);
  }
  if (d.contains("synthetic")) {
    const Json& s = d.at("synthetic");
    o.synthetic_samples = s.value("samples", o.synthetic_samples);
    o.synthetic_test_samples = s.value("test_samples", o.synthetic_test_samples);
    o.synthetic_features = s.value("features", o.synthetic_features);
    o.synthetic_classes = s.value("classes", o.synthetic_classes);
    o.synthetic_separation = s.value("separation", o.synthetic_separation);
  }
  return o;
}

models::ModelOptions classify_model_options(const Json& m) {
  models::ModelOptions o;
  o.arch = m.value("arch", o.arch);
  o.hidden = m.value("hidden", o.hidden);
  o.channels = m.value("channels", o.channels);
  o.dropout = m.value("dropout", o.dropout);
  return o;
}

namespace {

// Logits for a whole split, in eval mode, batch by batch.
torch::Tensor predict(torch::nn::Sequential& model, const torch::Tensor& x, std::int64_t batch, torch::Device dev) {
  torch::NoGradGuard no_grad;
  model->eval();
  std::vector<torch::Tensor> out;
  for (std::int64_t i = 0; i < x.size(0); i += batch) {
    out.push_back(model->forward(x.slice(0, i, std::min(i + batch, x.size(0))).to(dev)).to(torch::kCPU));
  }
  model->train();
  if (out.empty()) return torch::empty({0, 0});
  return torch::cat(out);
}

double masked_accuracy(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& mask) {
  if (mask.sum().item<std::int64_t>() == 0) return std::nan("");
  return metrics::accuracy(logits.index({mask}), labels.index({mask}));
}

}  // namespace

void run_classify(runner::TrialEnv& env) {
  const Json& cfg = env.config;
  const Json& task = cfg.at("task");
  const std::int64_t seed = cfg.value("seed", std::int64_t{0});
  const std::int64_t epochs = task.value("epochs", std::int64_t{10});
  const std::int64_t batch_size = task.value("batch_size", std::int64_t{128});
  const std::int64_t eval_batch = task.value("eval_batch_size", std::int64_t{1000});
  const std::int64_t checkpoint_every = task.value("checkpoint_every", std::int64_t{1});
  const torch::Device device = trial_device(task);

  torch::manual_seed(static_cast<std::uint64_t>(seed));
  auto t_load = std::chrono::steady_clock::now();
  data::Dataset ds = data::load_dataset(data_options_from(cfg.at("data")), static_cast<std::uint64_t>(seed));
  env.log.info("data: " + std::to_string(ds.train.size()) + " train, " + std::to_string(ds.val.size()) +
                        " val, " + std::to_string(ds.test.size()) + " test, " +
                        std::to_string(ds.train_flipped.sum().item<std::int64_t>()) + " flipped labels, loaded in " +
                        std::to_string(std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count()) +
                        " s");

  auto model = models::make_model(classify_model_options(cfg.at("model")), ds.input_shape, ds.num_classes);
  // A trial with a stage (init.from) starts from the stage's final weights,
  // before any method re-parameterises the model; its own checkpoint, when it
  // resumes, replaces them below.
  auto load_init = [&] {
    if (!env.init_checkpoint.empty()) load_model_weights(env.init_checkpoint, *model);
  };
  load_init();
  model->to(device);
  OptimOptions oo = optim_options_from(cfg.at("optim"));

  const Json& method_cfg = cfg.at("method");
  const std::string method_name = method_cfg.at("name").get<std::string>();
  const plugins::LoadedPlugin& plugin = plugins::registry().get(method_name);
  env.method_version(method_name, plugin.info->version);
  Params params = plugins::resolve_params(*plugin.info, method_cfg.dump());
  plugins::MethodHandle method(plugin);
  MethodContext mctx{params, env.log, env.metrics, kClassify, ds.train.size(), ds.num_classes, epochs, device,
                     torch::kFloat};
  method.setup(mctx);

  // The method may re-parameterise the model (reglab/method.h): the optimizer
  // then trains its groups, and every forward pass, evaluation included, first
  // runs its before_forward.
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  auto prepare_model = [&] {
    const std::vector<ParamGroup> groups = method.transform_model(*model, ModelContext{oo.name, oo.weight_decay});
    if (groups.empty()) {
      optimizer = make_optimizer(oo, model->parameters());
      return;
    }
    model = models::with_before_forward(model, [&method](bool training) { method.before_forward(training); });
    optimizer = make_optimizer(oo, groups);
  };
  prepare_model();

  const fs::path ckpt = env.run_dir / "checkpoint.pt";
  const LoopPosition resumed = resume_or_restart(ckpt, *model, *optimizer, method, env.log, [&] {
    torch::manual_seed(static_cast<std::uint64_t>(seed));
    model = models::make_model(classify_model_options(cfg.at("model")), ds.input_shape, ds.num_classes);
    load_init();
    model->to(device);
    prepare_model();
  });
  const std::int64_t start_epoch = resumed.next_epoch;
  std::int64_t step = resumed.step;

  const std::int64_t n = ds.train.size();
  const torch::Tensor clean_mask = ds.train_flipped.logical_not();
  bool first_step_recorded = false;
  for (std::int64_t epoch = start_epoch; epoch < epochs; ++epoch) {
    auto t0 = std::chrono::steady_clock::now();
    const double lr = lr_at_epoch(oo, epoch, epochs);
    set_lr(*optimizer, lr);
    StepContext sctx{epoch, epochs, step, env.log, env.metrics};

    // The order of an epoch depends only on (seed, epoch), so a resumed run
    // sees the same batches as an uninterrupted one.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<std::uint64_t>(seed) * 1000003ULL +
                                                        static_cast<std::uint64_t>(epoch));
    torch::Tensor order = torch::randperm(n, gen, torch::kLong);
    double loss_sum = 0;
    std::int64_t seen = 0;
    model->train();
    for (std::int64_t i = 0; i < n; i += batch_size) {
      if (env.interrupted()) throw runner::Interrupted();
      torch::Tensor idx = order.slice(0, i, std::min(i + batch_size, n));
      Batch batch{ds.train.x.index_select(0, idx).to(device), ds.train.y.index_select(0, idx).to(device),
                  idx.to(device)};
      Outputs outputs;
      outputs.set("logits", model->forward(batch.inputs));
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
      const std::int64_t b = idx.size(0);
      loss_sum += loss_value * static_cast<double>(b);
      seen += b;
      ++step;
    }
    sctx.step = step;
    method.on_epoch_end(sctx);
    const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    // Evaluation.
    const std::int64_t e1 = epoch + 1;
    torch::Tensor train_logits = predict(model, ds.train.x, eval_batch, device);
    torch::Tensor test_logits = predict(model, ds.test.x, eval_batch, device);
    auto& m = env.metrics;
    m.record_core("train.loss", seen ? loss_sum / static_cast<double>(seen) : std::nan(""), e1);
    // Accuracy on the training labels is read from the end-of-epoch pass, like
    // the clean/flipped split below, rather than counted during the epoch:
    // the per-step argmax costs 1-5% of a small model's step (tools/bench),
    // and an eval-mode figure is the one that shows memorisation.
    m.record_core("train.acc", metrics::accuracy(train_logits, ds.train.y), e1);
    m.record_core("train.clean_acc", masked_accuracy(train_logits, ds.train.y, clean_mask), e1);
    if (ds.train_flipped.any().item<bool>()) {
      m.record_core("train.flipped_acc", masked_accuracy(train_logits, ds.train.y, ds.train_flipped), e1);
      m.record_core("train.flipped_true_acc", masked_accuracy(train_logits, ds.train_clean_y, ds.train_flipped), e1);
    }
    if (ds.val.size() > 0) {
      torch::Tensor val_logits = predict(model, ds.val.x, eval_batch, device);
      m.record_core("val.acc", metrics::accuracy(val_logits, ds.val.y), e1);
      m.record_core("val.nll", metrics::nll(val_logits, ds.val.y), e1);
    }
    const double test_acc = metrics::accuracy(test_logits, ds.test.y);
    m.record_core("test.acc", test_acc, e1);
    m.record_core("test.nll", metrics::nll(test_logits, ds.test.y), e1);
    m.record_core("test.ece", metrics::ece(test_logits, ds.test.y, 15), e1);
    m.record_core("test.aurc", metrics::aurc(test_logits, ds.test.y), e1);
    m.record_core("lr", lr, e1);
    m.record_core("time.train_s", train_s, e1);
    m.record_core("time.epoch_s", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), e1);
    m.flush();

    if (checkpoint_every > 0 && (e1 % checkpoint_every == 0 || e1 == epochs)) {
      save_checkpoint(ckpt, *model, *optimizer, method.state_dict(), {e1, step});
      env.artifact("checkpoint", ckpt);
    }
    env.heartbeat();
    const double train_loss = seen ? loss_sum / static_cast<double>(seen) : 0.0;
    env.log.info("epoch " + std::to_string(e1) + "/" + std::to_string(epochs) + " train.loss " +
                 std::to_string(train_loss) + " test.acc " + std::to_string(test_acc) + " (" +
                 std::to_string(train_s) + " s training)");
    env.report(Json{{"epoch", e1}, {"epochs", epochs}, {"metric", "test.acc"}, {"value", test_acc}});
  }
}

}  // namespace reglab::paradigms

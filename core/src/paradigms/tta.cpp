#include "paradigms/tta.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <set>

#include "data/corruption_cache.h"
#include "data/corruptions.h"
#include "data/dataset.h"
#include "metrics/auc.h"
#include "metrics/metrics.h"
#include "models/models.h"
#include "paradigms/checkpoint.h"
#include "paradigms/device.h"
#include "paradigms/classify.h"
#include "paradigms/tta_model.h"
#include "plugins/loader.h"
#include "plugins/method_handle.h"
#include "util/util.h"

namespace reglab::paradigms {

namespace fs = std::filesystem;
using config::Json;

namespace {

// SplitMix64 finaliser: the split and the segment orders are unrelated to
// each other and to the dataset's own draws.
std::uint64_t mix(std::uint64_t seed, std::uint64_t stream) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ull * (stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
constexpr std::uint64_t kHeldOutStream = 201;
constexpr std::uint64_t kUnknownStream = 202;
constexpr std::uint64_t kOrderStream = 203;

torch::Tensor permutation(std::int64_t n, std::uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return torch::randperm(n, gen, torch::kLong);
}

torch::Tensor sorted(const torch::Tensor& idx) { return std::get<0>(idx.sort()); }

}  // namespace

std::vector<std::string> default_corruption_order(const std::string& protocol) {
  if (protocol == "standard" || protocol == "gradual") return data::corruption_names();
  if (protocol == "continual") {
    // CoTTA's CIFAR-10-C sequence (gaussian, shot, impulse, defocus, glass,
    // motion, zoom, snow, frost, fog, brightness, contrast, elastic, pixelate,
    // jpeg) without the five corruptions Fashion-MNIST-C does not have.
    return {"gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "motion_blur",
            "fog",            "brightness", "contrast",      "elastic_transform", "pixelate"};
  }
  throw std::invalid_argument("tta.protocol must be standard, continual or gradual, got '" + protocol + "'");
}

std::vector<StreamSegment> stream_segments(const std::string& protocol, const std::vector<std::string>& corruptions,
                                           int severity) {
  const std::vector<std::string> order = corruptions.empty() ? default_corruption_order(protocol) : corruptions;
  default_corruption_order(protocol);  // rejects an unknown protocol even with a list given
  std::vector<StreamSegment> out;
  std::set<std::string> seen;
  for (std::size_t c = 0; c < order.size(); ++c) {
    const std::string& name = order[c];
    if (!seen.insert(name).second) throw std::invalid_argument("tta.corruptions lists '" + name + "' twice");
    const auto k = static_cast<std::int64_t>(c);
    if (protocol == "gradual") {
      for (int s : {1, 2, 3, 4, 5, 4, 3, 2, 1}) {
        data::validate_corruption(name, s);
        out.push_back({name, s, out.empty(), k});
      }
    } else {
      try {
        data::validate_corruption(name, severity);
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(std::string("tta: ") + e.what());
      }
      out.push_back({name, severity, protocol == "standard" || out.empty(), k});
    }
  }
  if (out.empty()) throw std::invalid_argument("tta: the stream has no corruption");
  return out;
}

StreamSplit split_test_set(const torch::Tensor& labels, const std::vector<std::int64_t>& classes,
                           std::int64_t held_out, double unknown_ratio, std::uint64_t seed) {
  if (held_out < 0) throw std::invalid_argument("tta.held_out must be >= 0");
  if (!(unknown_ratio >= 0 && unknown_ratio < 1))
    throw std::invalid_argument("tta.unknown_ratio must be in [0, 1), got " + std::to_string(unknown_ratio));
  const torch::Tensor y = labels.to(torch::kCPU, torch::kLong).contiguous();
  const std::int64_t n = y.size(0);
  const std::int64_t max_label = n > 0 ? y.max().item<std::int64_t>() : -1;
  std::int64_t top = max_label;
  for (std::int64_t c : classes) top = std::max(top, c);
  // relabel[c] = position of class c in `classes`, −1 for classes left out.
  std::vector<std::int64_t> relabel(static_cast<std::size_t>(top + 1), classes.empty() ? 0 : -1);
  if (classes.empty()) {
    for (std::int64_t c = 0; c <= top; ++c) relabel[static_cast<std::size_t>(c)] = c;
  }
  for (std::size_t i = 0; i < classes.size(); ++i) relabel[static_cast<std::size_t>(classes[i])] = static_cast<std::int64_t>(i);
  const torch::Tensor mapped = n > 0 ? torch::tensor(relabel, torch::kLong).index_select(0, y) : y;
  const torch::Tensor known = (mapped >= 0).nonzero().flatten();
  const torch::Tensor unknown = (mapped < 0).nonzero().flatten();

  const std::int64_t n_known = known.size(0);
  if (held_out >= n_known) {
    throw std::runtime_error("tta.held_out = " + std::to_string(held_out) + " takes every one of the " +
                             std::to_string(n_known) +
                             " test samples of the known classes: the stream would be empty (lower tta.held_out "
                             "or raise data.test_limit)");
  }
  const torch::Tensor perm = known.index_select(0, permutation(n_known, mix(seed, kHeldOutStream)));
  StreamSplit out;
  out.held_out = sorted(perm.narrow(0, 0, held_out));
  const torch::Tensor stream_known = sorted(perm.narrow(0, held_out, n_known - held_out));
  out.num_known = stream_known.size(0);

  const auto want = static_cast<std::int64_t>(
      std::llround(static_cast<double>(out.num_known) * unknown_ratio / (1.0 - unknown_ratio)));
  torch::Tensor stream_unknown = torch::empty({0}, torch::kLong);
  if (want > 0) {
    if (want > unknown.size(0)) {
      throw std::runtime_error("tta.unknown_ratio = " + std::to_string(unknown_ratio) + " asks for " +
                               std::to_string(want) + " samples of the unknown classes next to " +
                               std::to_string(out.num_known) + " known ones, but the test set has only " +
                               std::to_string(unknown.size(0)));
    }
    stream_unknown = sorted(
        unknown.index_select(0, permutation(unknown.size(0), mix(seed, kUnknownStream)).narrow(0, 0, want)));
  }
  out.stream = torch::cat({stream_known, stream_unknown});
  out.stream_labels = torch::cat({mapped.index_select(0, stream_known), torch::full({want}, -1, torch::kLong)});
  return out;
}

torch::Tensor segment_order(std::int64_t count, std::uint64_t seed, std::int64_t position) {
  return permutation(count, mix(mix(seed, kOrderStream), static_cast<std::uint64_t>(position)));
}

void OnlineScores::add(const torch::Tensor& logits, const torch::Tensor& labels, std::int64_t num_used) {
  const torch::Tensor z = logits.detach().to(torch::kCPU, torch::kDouble);
  const torch::Tensor y = labels.to(torch::kCPU, torch::kLong);
  TORCH_CHECK(z.dim() == 2 && y.dim() == 1 && z.size(0) == y.size(0), "OnlineScores: logits [B, K] and labels [B]");
  const torch::Tensor known = y >= 0;
  const torch::Tensor pred = z.argmax(1);
  samples_ += y.size(0);
  known_ += known.sum().item<std::int64_t>();
  correct_ += (pred.eq(y) & known).sum().item<std::int64_t>();
  used_ += num_used;
  const torch::Tensor conf = torch::softmax(z, 1).amax(1).to(torch::kFloat).contiguous();
  const torch::Tensor k = known.to(torch::kUInt8).contiguous();
  confidence_.insert(confidence_.end(), conf.data_ptr<float>(), conf.data_ptr<float>() + conf.numel());
  is_known_.insert(is_known_.end(), k.data_ptr<std::uint8_t>(), k.data_ptr<std::uint8_t>() + k.numel());
}

void OnlineScores::merge(const OnlineScores& o) {
  samples_ += o.samples_;
  known_ += o.known_;
  correct_ += o.correct_;
  used_ += o.used_;
  confidence_.insert(confidence_.end(), o.confidence_.begin(), o.confidence_.end());
  is_known_.insert(is_known_.end(), o.is_known_.begin(), o.is_known_.end());
}

double OnlineScores::error() const {
  return known_ == 0 ? std::nan("") : 1.0 - static_cast<double>(correct_) / static_cast<double>(known_);
}

double OnlineScores::used_fraction() const {
  return samples_ == 0 ? std::nan("") : static_cast<double>(used_) / static_cast<double>(samples_);
}

double OnlineScores::auroc() const {
  if (confidence_.empty()) return std::nan("");
  const auto n = static_cast<std::int64_t>(confidence_.size());
  const torch::Tensor scores = torch::from_blob(const_cast<float*>(confidence_.data()), {n}, torch::kFloat);
  const torch::Tensor labels = torch::from_blob(const_cast<std::uint8_t*>(is_known_.data()), {n}, torch::kUInt8);
  return metrics::roc_auc(scores, labels.to(torch::kLong));
}

namespace {

std::string format(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

// Per-channel mean and population std of [N, C, H, W] images (what
// data/dataset.cpp standardises with).
std::pair<torch::Tensor, torch::Tensor> channel_stats(const torch::Tensor& x) {
  auto [std, mean] = torch::std_mean(x.to(torch::kDouble), {0, 2, 3}, /*unbiased=*/false, /*keepdim=*/true);
  std = torch::where(std > 0, std, torch::ones_like(std));
  return {mean.to(torch::kFloat), std.to(torch::kFloat)};
}

}  // namespace

void run_tta(runner::TrialEnv& env) {
  const Json& cfg = env.config;
  const Json& tta = cfg.at("tta");
  const std::uint64_t seed = cfg.value("seed", std::uint64_t{0});
  const std::string protocol = tta.value("protocol", std::string("standard"));
  const auto corruptions = tta.value("corruptions", std::vector<std::string>{});
  const int severity = tta.value("severity", 5);
  const std::int64_t batch_size = tta.value("batch_size", std::int64_t{200});
  const std::int64_t held_out_n = tta.value("held_out", std::int64_t{2000});
  const double unknown_ratio = tta.value("unknown_ratio", 0.0);
  const std::uint64_t corruption_seed = tta.value("corruption_seed", std::uint64_t{0});
  const torch::Device device = trial_device(cfg.at("task"));

  // Everything that can be wrong with the stream is found before any work.
  const std::vector<StreamSegment> segments = stream_segments(protocol, corruptions, severity);
  if (env.init_checkpoint.empty() || env.init_config.is_null())
    throw std::runtime_error("a tta trial adapts a source model: set init.from to its classify configuration");

  // The stage's training split gives the normalisation its model was trained with.
  auto t_load = std::chrono::steady_clock::now();
  const Json& stage = env.init_config;
  data::DataOptions stage_data = data_options_from(stage.at("data"));
  const bool normalize = stage_data.normalize;
  stage_data.normalize = false;
  data::preload(stage_data);
  const data::Dataset source_ds = data::load_dataset(stage_data, stage.value("seed", std::uint64_t{0}));
  torch::Tensor mean = torch::zeros({1, 1, 1, 1}), stdev = torch::ones({1, 1, 1, 1});
  if (normalize) std::tie(mean, stdev) = channel_stats(source_ds.train.x);
  const std::int64_t num_classes = source_ds.num_classes;

  // The trial's test set with every class, in [0, 1]; the training split is
  // not needed (limit 1 keeps its construction cheap).
  data::DataOptions test_data = data_options_from(cfg.at("data"));
  const std::vector<std::int64_t> classes = test_data.classes;
  test_data.classes.clear();
  test_data.normalize = false;
  test_data.limit = 1;
  const data::Dataset ds = data::load_dataset(test_data, seed);
  if (!classes.empty() && static_cast<std::int64_t>(classes.size()) != num_classes)
    throw std::runtime_error("data.classes lists " + std::to_string(classes.size()) + " classes but the stage's model has " +
                             std::to_string(num_classes));
  const StreamSplit split = split_test_set(ds.test.y, classes, held_out_n, unknown_ratio, seed);
  const std::int64_t n_stream = split.stream.size(0);
  auto normalized = [&](const torch::Tensor& x) { return (x - mean) / stdev; };
  const torch::Tensor held_out_x = normalized(ds.test.x.index_select(0, split.held_out)).to(device);
  const torch::Tensor clean_known = split.stream.narrow(0, 0, split.num_known);
  const torch::Tensor clean_x = normalized(ds.test.x.index_select(0, clean_known));
  const torch::Tensor clean_y = split.stream_labels.narrow(0, 0, split.num_known);
  env.log.info("data: " + std::to_string(n_stream) + " stream samples (" + std::to_string(split.num_known) +
               " known, " + std::to_string(n_stream - split.num_known) + " unknown), " +
               std::to_string(split.held_out.size(0)) + " held out; protocol " + protocol + ", " +
               std::to_string(segments.size()) + " segments; loaded in " +
               format(std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count()) + " s");

  // The source model, as the stage left it.
  auto model = models::make_model(classify_model_options(cfg.at("model")), ds.input_shape, num_classes);
  load_model_weights(env.init_checkpoint, *model);
  model->to(device);
  model->eval();
  const SourceWeights source(*model);

  const Json& method_cfg = cfg.at("method");
  const std::string method_name = method_cfg.at("name").get<std::string>();
  const plugins::LoadedPlugin& plugin = plugins::registry().get(method_name);
  env.method_version(method_name, plugin.info->version);
  Params params = plugins::resolve_params(*plugin.info, method_cfg.dump());
  plugins::MethodHandle method(plugin);
  const auto n_corruptions = segments.back().corruption_index + 1;
  MethodContext mctx{params, env.log, env.metrics, kTta, n_stream, num_classes, n_corruptions, device, torch::kFloat};
  method.setup(mctx);

  TtaModel tta_model = sequential_tta_model(model);
  const TtaContext tctx{held_out_x, batch_size, seed};

  // The clean error of the model as it now predicts (as_adapted) or in eval
  // mode. It runs on the model itself and puts back what a forward pass can
  // change (BatchNorm buffers in train mode) and the modules' modes: a copy
  // through Cloneable::clone would fail once a method has switched BatchNorm
  // to batch statistics (the copy's reset() registers no running buffers).
  auto clean_error = [&](bool as_adapted) {
    torch::NoGradGuard no_grad;
    std::vector<std::pair<torch::Tensor, torch::Tensor>> buffers;
    for (const auto& b : model->named_buffers())
      if (b.value().defined()) buffers.emplace_back(b.value(), b.value().detach().clone());
    std::vector<std::pair<std::shared_ptr<torch::nn::Module>, bool>> modes;
    for (const auto& m : model->modules(/*include_self=*/true)) modes.emplace_back(m, m->is_training());
    if (!as_adapted) model->eval();
    std::int64_t wrong = 0;
    for (std::int64_t i = 0; i < clean_x.size(0); i += batch_size) {
      const std::int64_t b = std::min(batch_size, clean_x.size(0) - i);
      const torch::Tensor z = tta_model.forward(*model, clean_x.narrow(0, i, b).to(device)).to(torch::kCPU);
      wrong += z.argmax(1).ne(clean_y.narrow(0, i, b)).sum().item<std::int64_t>();
    }
    for (auto& [live, saved] : buffers) live.copy_(saved);
    // modules() lists parents before children and train() recurses, so in
    // this order every module ends with its own flag.
    for (auto& [m, training] : modes) m->train(training);
    return static_cast<double>(wrong) / static_cast<double>(std::max<std::int64_t>(1, clean_x.size(0)));
  };
  auto& m = env.metrics;
  m.record_core("tta.clean_err_source", clean_error(false), 0);

  const fs::path results = env.run_dir.parent_path().parent_path().parent_path();
  const fs::path cache_dir = results / "cache" / "fashion-mnist-c";
  const bool open_set = n_stream > split.num_known;
  OnlineScores total, per_corruption;
  double clean_err_sum = 0, last_clean_err = std::nan(""), tta_seconds = 0;
  std::int64_t step = 0;
  bool first_step_recorded = false;
  auto t_corruption = std::chrono::steady_clock::now();
  for (std::size_t s = 0; s < segments.size(); ++s) {
    const StreamSegment& seg = segments[s];
    if (seg.reset_before) {
      source.restore(*model);
      method.tta_setup(tta_model, tctx);
    }
    const torch::Tensor corrupted =
        data::cached_corruption(cache_dir, "fashion-mnist-test", ds.test.x, seg.corruption, seg.severity, corruption_seed);
    const torch::Tensor order = segment_order(n_stream, seed, static_cast<std::int64_t>(s));
    const torch::Tensor rows = split.stream.index_select(0, order);
    const torch::Tensor x = normalized(corrupted.index_select(0, rows));
    const torch::Tensor y = split.stream_labels.index_select(0, order);
    OnlineScores segment_scores;
    StepContext sctx{seg.corruption_index, n_corruptions, step, env.log, env.metrics};
    for (std::int64_t i = 0; i < n_stream; i += batch_size) {
      if (env.interrupted()) throw runner::Interrupted();
      const std::int64_t b = std::min(batch_size, n_stream - i);
      const torch::Tensor inputs = x.narrow(0, i, b).to(device);
      sctx.step = step;
      const auto t0 = std::chrono::steady_clock::now();
      const TtaStepResult result = method.tta_step(inputs, sctx);
      tta_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (result.logits.size(1) != num_classes)
        throw std::runtime_error("method '" + method_name + "' returned logits for " +
                                 std::to_string(result.logits.size(1)) + " classes; the model has " +
                                 std::to_string(num_classes));
      segment_scores.add(result.logits, y.narrow(0, i, b), result.num_used);
      if (!first_step_recorded) {
        first_step_recorded = true;
        if (env.spawned_at > 0) m.record_core("time.startup_s", util::now_seconds() - env.spawned_at, 0);
      }
      ++step;
    }
    m.record_core("tta.segment_err", segment_scores.error(), static_cast<std::int64_t>(s) + 1);
    per_corruption.merge(segment_scores);
    if (s + 1 < segments.size() && segments[s + 1].corruption_index == seg.corruption_index) continue;

    // The corruption is done.
    const std::int64_t k = seg.corruption_index + 1;
    const std::string& c = seg.corruption;
    const double err = per_corruption.error();
    const double clean_err = clean_error(true);
    clean_err_sum += clean_err;
    last_clean_err = clean_err;
    m.record_core("tta.err." + c, err, k);
    m.record_core("tta.used_frac." + c, per_corruption.used_fraction(), k);
    m.record_core("tta.clean_err." + c, clean_err, k);
    std::string line = "corruption " + std::to_string(k) + "/" + std::to_string(n_corruptions) + " " + c +
                       (protocol == "gradual" ? " s1-5-1" : " s" + std::to_string(seg.severity)) + ": err " +
                       format(err) + ", used " + format(per_corruption.used_fraction()) + ", clean err " +
                       format(clean_err);
    if (open_set) {
      m.record_core("tta.auroc." + c, per_corruption.auroc(), k);
      m.record_core("tta.known_acc." + c, 1.0 - err, k);
      line += ", auroc " + format(per_corruption.auroc());
    }
    line += " (" + std::to_string(per_corruption.samples()) + " samples, " +
            format(std::chrono::duration<double>(std::chrono::steady_clock::now() - t_corruption).count()) + " s)";
    env.log.info(line);
    total.merge(per_corruption);
    per_corruption = OnlineScores();
    t_corruption = std::chrono::steady_clock::now();
    m.flush();
    env.heartbeat();
    env.report(Json{{"epoch", k}, {"epochs", n_corruptions}, {"metric", "tta.err"}, {"value", err}});
  }

  m.record_core("tta.err", total.error(), n_corruptions);
  m.record_core("tta.used_frac", total.used_fraction(), n_corruptions);
  m.record_core("tta.clean_err",
           protocol == "standard" ? clean_err_sum / static_cast<double>(n_corruptions) : last_clean_err,
           n_corruptions);
  if (open_set) {
    m.record_core("tta.auroc", total.auroc(), n_corruptions);
    m.record_core("tta.known_acc", 1.0 - total.error(), n_corruptions);
  }
  m.record_core("time.tta_s", tta_seconds, n_corruptions);
  m.record_core("tta.samples_per_s",
                tta_seconds > 0 ? static_cast<double>(total.samples()) / tta_seconds : std::nan(""), n_corruptions);
  m.flush();
  env.log.info("stream done: err " + format(total.error()) + ", used " + format(total.used_fraction()) + ", " +
               format(tta_seconds > 0 ? static_cast<double>(total.samples()) / tta_seconds : 0.0) + " samples/s");
}

}  // namespace reglab::paradigms

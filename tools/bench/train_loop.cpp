// train_loop.cpp — reglab's classify loop against a bare LibTorch loop.
//
// Both loops train the same MLP (models::make_model, same seed, so the same
// initial weights) on the same Fashion-MNIST training split (loaded through
// data::load_dataset), with SGD and the same batch size, on one intra-op
// thread. The bare loop is what a person would write by hand: randperm,
// index_select, forward, cross_entropy, zero_grad, backward, step,
// loss.item(). reglab's loop is paradigms::run_classify with the `ce` plugin;
// its time is the `time.train_s` metric it records per epoch (training steps
// only: its per-epoch evaluation is not counted, the bare loop has none).
// The bare loop draws each epoch's order from the generator seed the
// paradigm uses, so both loops see the same batches and their mean training
// losses must agree (printed as a sanity check).
//
// Repetitions alternate the order (bare first, then reglab first, ...) so a
// drift of the machine's speed hits both alike. Prints per-epoch medians,
// samples/s and the overhead of reglab's loop, plus one "sample KEY VALUE"
// line per measured epoch for tools/bench/run_all.
//
// Wall-clock time is what the targets are about, but on a machine shared with
// other work it mostly measures the others. So both loops also measure this
// thread's CPU time over the same span of every epoch: from the start of its
// first step to the start of its last one (the S-1 full batches in between).
// In reglab's loop the clock is read in the interrupt poll, which the
// paradigm calls once at the top of every step; the bare loop reads it at the
// same place. With one intra-op thread all the work runs on this thread.
// The median of the single steps' CPU times (poll to poll) is printed too:
// a burst of other work lands in a few steps and leaves the median alone.
//
//   reglab_bench_train_loop [--hidden 256] [--batch 128] [--epochs 3] [--reps 5]
//                           [--lr 0.01] [--limit 0] [--tag NAME] [--first bare|reglab]
//                           [--only bare|reglab] [--interleave on|off] [--method ce]
// --first picks which loop runs first in the first repetition (run_all
// alternates it between single-repetition calls).
//
// --interleave on measures the two loops step by step instead: reglab's loop
// runs, and inside its interrupt poll (the top of every step) a twin model
// takes the bare loop's step on the same batch. Both steps then see the same
// machine at the same moment, which makes this the robust overhead figure on
// a shared machine; sequential epochs, even alternated, mostly measure
// whoever else is using the cores. With --method NAME reglab's loop trains
// with that method (its defaults) while the twin stays plain CE, so the ratio
// of two runs (NAME vs ce) prices the method against CE inside reglab.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/sgd.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <time.h>

#include "data/dataset.h"
#include "models/models.h"
#include "paradigms/classify.h"
#include "plugins/loader.h"
#include "runner/trial_env.h"
#include "store/store.h"
#include "sweep/sweep.h"
#include "util/util.h"

namespace fs = std::filesystem;
using reglab::config::Json;

namespace {

struct Options {
  std::vector<std::int64_t> hidden = {256};
  std::int64_t batch = 128;
  std::int64_t epochs = 3;
  int reps = 5;
  double lr = 0.01;
  std::int64_t limit = 0;
  std::string tag = "loop";
  std::string method = "ce";  // reglab's method (with its defaults); the bare loop is always plain CE
  std::string only;  // "", "bare" or "reglab"
  bool reglab_first = false;  // order of the first repetition
  bool interleave = false;    // --interleave: the twin-step measurement (see interleaved_loop)
};

[[noreturn]] void usage(const std::string& problem) {
  std::cerr << "reglab_bench_train_loop: " << problem << "\n"
            << "usage: reglab_bench_train_loop [--hidden 256[,128...]] [--batch 128] [--epochs 3] [--reps 5]\n"
            << "                               [--lr 0.01] [--limit 0] [--tag NAME] [--first bare|reglab]\n"
            << "                               [--only bare|reglab] [--interleave on|off] [--method ce]\n";
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) usage("missing value after " + flag);
    const std::string v = argv[++i];
    try {
      if (flag == "--hidden") {
        o.hidden.clear();
        for (const std::string& part : reglab::util::split(v, ',')) o.hidden.push_back(std::stoll(part));
      } else if (flag == "--batch") {
        o.batch = std::stoll(v);
      } else if (flag == "--epochs") {
        o.epochs = std::stoll(v);
      } else if (flag == "--reps") {
        o.reps = std::stoi(v);
      } else if (flag == "--lr") {
        o.lr = std::stod(v);
      } else if (flag == "--limit") {
        o.limit = std::stoll(v);
      } else if (flag == "--tag") {
        o.tag = v;
      } else if (flag == "--first") {
        if (v != "bare" && v != "reglab") usage("--first takes bare or reglab, got " + v);
        o.reglab_first = v == "reglab";
      } else if (flag == "--method") {
        o.method = v;
      } else if (flag == "--interleave") {
        if (v != "on" && v != "off") usage("--interleave takes on or off, got " + v);
        o.interleave = v == "on";
      } else if (flag == "--only") {
        if (v != "bare" && v != "reglab") usage("--only takes bare or reglab, got " + v);
        o.only = v;
      } else {
        usage("unknown option " + flag);
      }
    } catch (const std::logic_error&) {
      usage("bad value '" + v + "' for " + flag);
    }
  }
  if (o.hidden.empty() || o.batch < 1 || o.epochs < 1 || o.reps < 1) usage("sizes must be positive");
  return o;
}

class NullLogger final : public reglab::Logger {
 public:
  void log(reglab::LogLevel, std::string_view) override {}
};

// The plugin registry seen through sweep validation's lookup interface (the
// CLI's method_schemas.cpp does the same; it lives in the CLI executable).
reglab::config::MethodLookup registry_lookup() {
  return [](const std::string& name) -> std::optional<reglab::config::MethodSchema> {
    const reglab::plugins::LoadedPlugin* p = reglab::plugins::registry().find(name);
    if (p == nullptr) return std::nullopt;
    reglab::config::MethodSchema s;
    s.name = p->info->name;
    s.paradigms = p->info->paradigms;
    s.params.assign(p->info->params, p->info->params + p->info->num_params);
    return s;
  };
}

reglab::config::MethodNames registry_names() {
  return [] { return reglab::plugins::registry().names(); };
}

// A resolved trial configuration, exactly as `reglab run` would store it.
Json resolved_config(const Options& o, const fs::path& dir) {
  std::string hidden;
  for (std::int64_t h : o.hidden) hidden += (hidden.empty() ? "" : ", ") + std::to_string(h);
  const fs::path file = dir / "bench_train_loop.toml";
  std::ofstream(file) << "[sweep]\nname = \"bench_train_loop\"\n"
                      << "[task]\nepochs = " << o.epochs << "\nbatch_size = " << o.batch
                      << "\ncheckpoint_every = 0\n"
                      << "[data]\ndataset = \"fashion-mnist\"\nlimit = " << o.limit << "\n"
                      << "[model]\narch = \"mlp\"\nhidden = [" << hidden << "]\n"
                      << "[optim]\nname = \"sgd\"\nlr = " << o.lr << "\nmomentum = 0.9\n"
                      << "[method]\nname = \"" << o.method << "\"\n";
  reglab::sweep::Sweep sweep = reglab::sweep::load_sweep(file, {}, registry_lookup(), registry_names());
  if (sweep.trials.size() != 1) throw std::runtime_error("expected one trial");
  return sweep.trials.front().config;
}

reglab::data::DataOptions data_options(const Json& d) {
  reglab::data::DataOptions o;
  o.dataset = d.at("dataset").get<std::string>();
  o.root = d.at("root").get<std::string>();
  o.limit = d.at("limit").get<std::int64_t>();
  o.test_limit = d.at("test_limit").get<std::int64_t>();
  o.val_fraction = d.at("val_fraction").get<double>();
  o.normalize = d.at("normalize").get<bool>();
  return o;
}

struct EpochResult {
  double seconds;     // wall, the whole epoch's training (bare) or time.train_s (reglab)
  double mean_loss;
  double steps_cpu_s = 0;   // CPU time of steps 0..S-2 (see the file comment)
  double steps_wall_s = 0;  // wall time of the same span
  double median_step_cpu_s = 0;  // median CPU time of one step (steps 0..S-2)
};

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Called at the top of every step; keeps, per epoch, the CPU and wall time
// from the start of step 0 to the start of step S-1.
double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

class StepClock {
 public:
  explicit StepClock(std::int64_t steps_per_epoch) : steps_(steps_per_epoch) {}
  void tick() {
    const std::int64_t i = calls_++ % steps_;
    const double cpu = thread_cpu_seconds();
    if (i == 0) {
      cpu0_ = cpu;
      wall0_ = wall_seconds();
      step_cpu_.clear();
    } else {
      step_cpu_.push_back(cpu - last_cpu_);
    }
    last_cpu_ = cpu;
    if (i == steps_ - 1 && steps_ > 1) {
      cpu_.push_back(cpu - cpu0_);
      wall_.push_back(wall_seconds() - wall0_);
      median_step_.push_back(median(step_cpu_));
    }
  }
  std::int64_t calls() const { return calls_; }
  const std::vector<double>& cpu() const { return cpu_; }
  const std::vector<double>& wall() const { return wall_; }
  const std::vector<double>& median_step() const { return median_step_; }

 private:
  std::int64_t steps_;
  std::int64_t calls_ = 0;
  double cpu0_ = 0, wall0_ = 0, last_cpu_ = 0;
  std::vector<double> step_cpu_;
  std::vector<double> cpu_, wall_, median_step_;
};

void attach_step_times(std::vector<EpochResult>& epochs, const StepClock& clock) {
  for (std::size_t e = 0; e < epochs.size() && e < clock.cpu().size(); ++e) {
    epochs[e].steps_cpu_s = clock.cpu()[e];
    epochs[e].steps_wall_s = clock.wall()[e];
    epochs[e].median_step_cpu_s = clock.median_step()[e];
  }
}

// What a person would write by hand: the model (same seed, so the same
// initial weights as reglab's), SGD, and one step = forward, cross_entropy,
// zero_grad, backward, step, loss.item().
class BareTrainer {
 public:
  BareTrainer(const reglab::data::Dataset& ds, const Json& cfg)
      : x_(ds.train.x), y_(ds.train.y), seed_(cfg.at("seed").get<std::uint64_t>()) {
    reglab::models::ModelOptions mo;
    mo.arch = "mlp";
    mo.hidden = cfg.at("model").at("hidden").get<std::vector<std::int64_t>>();
    torch::manual_seed(seed_);
    model_ = reglab::models::make_model(mo, ds.input_shape, ds.num_classes);
    const Json& optim = cfg.at("optim");
    opt_ = std::make_unique<torch::optim::SGD>(
        model_->parameters(),
        torch::optim::SGDOptions(optim.at("lr").get<double>()).momentum(optim.at("momentum").get<double>()));
    model_->train();
  }
  // The epoch's order, as the classify paradigm draws it (seed * 1000003 + epoch).
  torch::Tensor order(std::int64_t epoch) const {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed_ * 1000003ULL + static_cast<std::uint64_t>(epoch));
    return torch::randperm(x_.size(0), gen, torch::kLong);
  }
  // One step on the rows idx; returns the loss times the batch size.
  double step(const torch::Tensor& idx) {
    const torch::Tensor logits = model_->forward(x_.index_select(0, idx));
    torch::Tensor loss = torch::nn::functional::cross_entropy(logits, y_.index_select(0, idx));
    opt_->zero_grad();
    loss.backward();
    opt_->step();
    return loss.item<double>() * static_cast<double>(idx.size(0));
  }

 private:
  torch::Tensor x_, y_;
  std::uint64_t seed_;
  torch::nn::Sequential model_{nullptr};
  std::unique_ptr<torch::optim::SGD> opt_;
};

// The hand-written loop: one epoch per entry of the result.
std::vector<EpochResult> bare_loop(const reglab::data::Dataset& ds, const Json& cfg) {
  const std::int64_t epochs = cfg.at("task").at("epochs").get<std::int64_t>();
  const std::int64_t batch = cfg.at("task").at("batch_size").get<std::int64_t>();
  BareTrainer bare(ds, cfg);
  const std::int64_t n = ds.train.size();
  StepClock clock((n + batch - 1) / batch);
  std::vector<EpochResult> out;
  for (std::int64_t epoch = 0; epoch < epochs; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    const torch::Tensor order = bare.order(epoch);
    double loss_sum = 0;
    for (std::int64_t i = 0; i < n; i += batch) {
      clock.tick();
      loss_sum += bare.step(order.slice(0, i, std::min(i + batch, n)));
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out.push_back({s, loss_sum / static_cast<double>(n)});
  }
  attach_step_times(out, clock);
  return out;
}

// reglab's loop, with its metrics recorded into a scratch store so that the
// time.train_s it measured can be read back. (A recorder without a store
// drops its points at every flush, and run_classify flushes per epoch.)
std::vector<EpochResult> reglab_loop(const Json& cfg, reglab::store::Store& store, std::int64_t sweep_id,
                                     const fs::path& dir, int rep, std::int64_t n) {
  const std::int64_t batch = cfg.at("task").at("batch_size").get<std::int64_t>();
  const std::int64_t epochs = cfg.at("task").at("epochs").get<std::int64_t>();
  StepClock clock((n + batch - 1) / batch);
  const std::string key = "rep" + std::to_string(rep) + "_" + std::to_string(reglab::util::now_seconds());
  const std::int64_t run_id = store.ensure_run(sweep_id, key, key, cfg.dump(), cfg.at("method").at("name").get<std::string>());
  NullLogger log;
  reglab::runner::MetricRecorder recorder(&store, run_id);
  const fs::path run_dir = dir / key;
  fs::create_directories(run_dir);
  reglab::runner::TrialEnv env{cfg,
                               log,
                               recorder,
                               run_dir,
                               [&clock] {
                                 clock.tick();
                                 return false;
                               },
                               [](const Json&) {},
                               [] {},
                               [](const std::string&, const std::string&) {},
                               [](const std::string&, const fs::path&) {},
                               0.0};
  reglab::paradigms::run_classify(env);
  recorder.flush();
  const auto times = store.metrics(run_id, "time.train_s");
  const auto losses = store.metrics(run_id, "train.loss");
  if (times.size() != losses.size()) throw std::runtime_error("time.train_s and train.loss differ in length");
  std::vector<EpochResult> out;
  for (std::size_t i = 0; i < times.size(); ++i) out.push_back({times[i].value, losses[i].value});
  // The CPU-time span relies on one interrupt poll per step.
  if (clock.calls() != epochs * ((n + batch - 1) / batch))
    throw std::runtime_error("run_classify polled the interrupt flag " + std::to_string(clock.calls()) +
                             " times, expected one poll per step");
  attach_step_times(out, clock);
  fs::remove_all(run_dir);
  return out;
}

// The twin-step measurement (--interleave on). Each step of reglab's loop is
// timed from the end of one interrupt poll to the start of the next; inside
// the poll, a bare twin (same initial weights, same optimizer, same batch)
// takes its step and is timed on its own. The last step of each epoch is
// left out of both: reglab's next poll comes after its evaluation.
struct InterleavedResult {
  std::vector<double> bare_step_s, reglab_step_s;  // paired, one entry per step
  double bare_mean_loss = 0, reglab_mean_loss = 0;  // last epoch
};

InterleavedResult interleaved_loop(const reglab::data::Dataset& ds, const Json& cfg, reglab::store::Store& store,
                                   std::int64_t sweep_id, const fs::path& dir) {
  const std::int64_t epochs = cfg.at("task").at("epochs").get<std::int64_t>();
  const std::int64_t batch = cfg.at("task").at("batch_size").get<std::int64_t>();
  BareTrainer twin(ds, cfg);
  const std::int64_t n = ds.train.size();
  const std::int64_t steps = (n + batch - 1) / batch;

  InterleavedResult out;
  std::int64_t calls = 0;
  double last_end = 0, bare_loss_sum = 0;
  torch::Tensor order;
  auto poll = [&]() -> bool {
    const double start = thread_cpu_seconds();
    const std::int64_t i = calls % steps;
    const std::int64_t epoch = calls / steps;
    ++calls;
    if (i > 0) out.reglab_step_s.push_back(start - last_end);
    if (i == 0) {
      order = twin.order(epoch);
      bare_loss_sum = 0;
    }
    const double b0 = thread_cpu_seconds();
    bare_loss_sum += twin.step(order.slice(0, i * batch, std::min((i + 1) * batch, n)));
    const double b1 = thread_cpu_seconds();
    if (i < steps - 1) out.bare_step_s.push_back(b1 - b0);
    if (i == steps - 1) out.bare_mean_loss = bare_loss_sum / static_cast<double>(n);
    last_end = thread_cpu_seconds();
    return false;
  };

  const std::string key = "interleaved_" + std::to_string(reglab::util::now_seconds());
  const std::int64_t run_id = store.ensure_run(sweep_id, key, key, cfg.dump(), cfg.at("method").at("name").get<std::string>());
  NullLogger log;
  reglab::runner::MetricRecorder recorder(&store, run_id);
  const fs::path run_dir = dir / key;
  fs::create_directories(run_dir);
  reglab::runner::TrialEnv env{cfg,
                               log,
                               recorder,
                               run_dir,
                               poll,
                               [](const Json&) {},
                               [] {},
                               [](const std::string&, const std::string&) {},
                               [](const std::string&, const fs::path&) {},
                               0.0};
  reglab::paradigms::run_classify(env);
  recorder.flush();
  const auto losses = store.metrics(run_id, "train.loss");
  if (!losses.empty()) out.reglab_mean_loss = losses.back().value;
  if (calls != epochs * steps || out.bare_step_s.size() != out.reglab_step_s.size())
    throw std::runtime_error("run_classify polled the interrupt flag " + std::to_string(calls) +
                             " times, expected one poll per step");
  fs::remove_all(run_dir);
  return out;
}

int run_interleaved(const Options& o, const reglab::data::Dataset& ds, const Json& cfg,
                    reglab::store::Store& store, std::int64_t sweep_id, const fs::path& dir) {
  std::vector<double> sum_ratio, median_ratio;
  double bare_loss = 0, reglab_loss = 0;
  for (int rep = 0; rep < o.reps; ++rep) {
    const InterleavedResult r = interleaved_loop(ds, cfg, store, sweep_id, dir);
    double sb = 0, sr = 0;
    std::vector<double> per_step;
    for (std::size_t k = 0; k < r.bare_step_s.size(); ++k) {
      sb += r.bare_step_s[k];
      sr += r.reglab_step_s[k];
      per_step.push_back(r.reglab_step_s[k] / r.bare_step_s[k]);
    }
    sum_ratio.push_back(sr / sb);
    median_ratio.push_back(median(per_step));
    bare_loss = r.bare_mean_loss;
    reglab_loss = r.reglab_mean_loss;
    std::printf("sample %s.twin_bare_steps_cpu_s %.6f\nsample %s.twin_reglab_steps_cpu_s %.6f\n"
                "sample %s.twin_ratio %.6f\nsample %s.twin_median_step_ratio %.6f\n",
                o.tag.c_str(), sb, o.tag.c_str(), sr, o.tag.c_str(), sum_ratio.back(), o.tag.c_str(),
                median_ratio.back());
    std::fflush(stdout);
  }
  const double ratio = median(sum_ratio), step_ratio = median(median_ratio);
  std::printf("%s: twin steps (reglab's step with method %s, then the bare CE step on the same batch, %d rep(s) x "
              "%lld epoch(s)):\n"
              "%s:   CPU time reglab / bare = %.4f (overhead %+.2f%%), median per-step ratio %.4f (%+.2f%%)\n"
              "%s:   last-epoch mean training loss bare %.6f, reglab %.6f (equal when the method is ce)\n",
              o.tag.c_str(), o.method.c_str(), o.reps, static_cast<long long>(o.epochs), o.tag.c_str(), ratio, (ratio - 1) * 100,
              step_ratio, (step_ratio - 1) * 100, o.tag.c_str(), bare_loss, reglab_loss);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  at::set_num_threads(1);
  try {
    const fs::path dir = fs::temp_directory_path() / ("reglab_bench_train_loop_" + std::to_string(getpid()));
    fs::create_directories(dir);
    const Json cfg = resolved_config(o, dir);
    const reglab::data::Dataset ds =
        reglab::data::load_dataset(data_options(cfg.at("data")), cfg.at("seed").get<std::uint64_t>());
    const double n = static_cast<double>(ds.train.size());
    reglab::store::Store store(dir / "bench.db");
    const std::int64_t sweep_id = store.upsert_sweep("bench_train_loop", "", "");

    std::string hidden;
    for (std::int64_t h : o.hidden) {
      hidden += '-';
      hidden += std::to_string(h);
    }
    std::printf("%s: MLP 784%s-10, batch %lld, SGD lr %g momentum 0.9, %lld train samples, %lld epoch(s) x %d rep(s), "
                "1 thread\n",
                o.tag.c_str(), hidden.c_str(), static_cast<long long>(o.batch), o.lr,
                static_cast<long long>(ds.train.size()), static_cast<long long>(o.epochs), o.reps);

    if (o.interleave) {
      const int rc = run_interleaved(o, ds, cfg, store, sweep_id, dir);
      fs::remove_all(dir);
      return rc;
    }

    const std::int64_t steps = (ds.train.size() + o.batch - 1) / o.batch;
    // Samples in the measured CPU span: the S-1 full batches before the last.
    const double span_samples = static_cast<double>((steps - 1) * o.batch);
    std::vector<double> bare_s, reglab_s, rep_ratio, bare_cpu, reglab_cpu, bare_step, reglab_step;
    auto print_epoch = [&](const char* loop, const EpochResult& e) {
      std::printf("sample %s.%s_epoch_s %.6f\nsample %s.%s_samples_per_s %.1f\n", o.tag.c_str(), loop, e.seconds,
                  o.tag.c_str(), loop, n / e.seconds);
      if (e.steps_cpu_s > 0) {
        std::printf("sample %s.%s_steps_cpu_s %.6f\nsample %s.%s_cpu_samples_per_s %.1f\n"
                    "sample %s.%s_steps_wall_s %.6f\nsample %s.%s_median_step_us %.3f\n",
                    o.tag.c_str(), loop, e.steps_cpu_s, o.tag.c_str(), loop, span_samples / e.steps_cpu_s,
                    o.tag.c_str(), loop, e.steps_wall_s, o.tag.c_str(), loop, e.median_step_cpu_s * 1e6);
      }
    };
    double last_bare_loss = std::nan(""), last_reglab_loss = std::nan("");
    for (int rep = 0; rep < o.reps; ++rep) {
      std::vector<EpochResult> b, r;
      const bool bare_first = (rep % 2 == 0) != o.reglab_first;
      for (int k = 0; k < 2; ++k) {
        const bool do_bare = (k == 0) == bare_first;
        if (do_bare && o.only != "reglab") b = bare_loop(ds, cfg);
        if (!do_bare && o.only != "bare") r = reglab_loop(cfg, store, sweep_id, dir, rep, ds.train.size());
      }
      std::vector<double> bs, rs;
      for (const auto& e : b) {
        bs.push_back(e.seconds);
        bare_s.push_back(e.seconds);
        if (e.steps_cpu_s > 0) bare_cpu.push_back(e.steps_cpu_s);
        if (e.median_step_cpu_s > 0) bare_step.push_back(e.median_step_cpu_s);
        print_epoch("bare", e);
      }
      for (const auto& e : r) {
        rs.push_back(e.seconds);
        reglab_s.push_back(e.seconds);
        if (e.steps_cpu_s > 0) reglab_cpu.push_back(e.steps_cpu_s);
        if (e.median_step_cpu_s > 0) reglab_step.push_back(e.median_step_cpu_s);
        print_epoch("reglab", e);
      }
      if (!b.empty()) last_bare_loss = b.back().mean_loss;
      if (!r.empty()) last_reglab_loss = r.back().mean_loss;
      if (!bs.empty() && !rs.empty()) {
        rep_ratio.push_back(median(rs) / median(bs));
        std::printf("sample %s.rep_ratio %.6f\n", o.tag.c_str(), rep_ratio.back());
      }
      std::fflush(stdout);
    }

    const double mb = median(bare_s), mr = median(reglab_s);
    std::printf("%s: bare   loop  median %.4f s/epoch  %9.0f samples/s  (%zu epochs)\n", o.tag.c_str(), mb, n / mb,
                bare_s.size());
    std::printf("%s: reglab loop  median %.4f s/epoch  %9.0f samples/s  (%zu epochs, time.train_s)\n", o.tag.c_str(),
                mr, n / mr, reglab_s.size());
    if (!bare_s.empty() && !reglab_s.empty()) {
      std::printf("%s: reglab / bare time = %.4f (overhead %+.2f%%), median of per-rep ratios %.4f\n", o.tag.c_str(),
                  mr / mb, (mr / mb - 1) * 100, median(rep_ratio));
      const double cb = median(bare_cpu), cr = median(reglab_cpu);
      std::printf("%s: CPU time of the first S-1 steps: bare %.4f s, reglab %.4f s, ratio %.4f (overhead %+.2f%%)\n",
                  o.tag.c_str(), cb, cr, cr / cb, (cr / cb - 1) * 100);
      const double sb = median(bare_step), sr = median(reglab_step);
      std::printf("%s: median CPU time of one step: bare %.1f us, reglab %.1f us, ratio %.4f (overhead %+.2f%%)\n",
                  o.tag.c_str(), sb * 1e6, sr * 1e6, sr / sb, (sr / sb - 1) * 100);
      std::printf("%s: sanity: last-epoch mean training loss bare %.6f, reglab %.6f\n", o.tag.c_str(),
                  last_bare_loss, last_reglab_loss);
    }
    fs::remove_all(dir);
  } catch (const std::exception& e) {
    std::cerr << "reglab_bench_train_loop: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

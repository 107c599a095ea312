// step_parts.cpp — what the parts of one classify training step cost.
//
// reglab's classify step differs from a bare LibTorch step in a few small
// operations: the `ce` plugin computes the loss as -mean(gather(log_softmax))
// where the bare loop calls cross_entropy, the paradigm computes the running
// training accuracy (argmax, eq, sum, item) every step, and moves the batch
// with .to(device) (a no-op on the CPU). This program prices each difference.
//
// Several identical models (models::make_model, same seed) each run their
// own variant of the step on the same batches, and the variants take turns
// step by step (the order rotates), so whatever else runs on the machine
// slows all variants alike. Each step's CPU time (this thread; one intra-op
// thread) is recorded, and the median per variant is printed with its cost
// relative to the bare step. Inputs are random: only shapes matter here.
//
// Also prints "sample TAG.KEY_us VALUE" lines for tools/bench/run_all.
//
//   reglab_bench_step_parts [--hidden 64] [--batch 16] [--steps 3000] [--tag parts]
#include <ATen/Parallel.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/sgd.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include <time.h>

#include "models/models.h"
#include "util/util.h"

namespace {

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

enum Loss { kCrossEntropy, kGather, kCrossEntropyStrict };

struct Variant {
  const char* name;
  const char* key;  // in the "sample" lines
  Loss loss;
  bool accuracy;  // argmax/eq/sum/item every step, as the paradigm does
  bool to_device; // .to(device) of inputs, targets, indices
};

const Variant kVariants[] = {
    {"bare: cross_entropy", "bare", kCrossEntropy, false, false},
    {"bare + per-step accuracy", "bare_accuracy", kCrossEntropy, true, false},
    {"ce plugin's loss: -mean(gather(log_softmax))", "ce_gather", kGather, false, false},
    {"reglab's step: ce plugin + accuracy + .to(device)", "reglab_step", kGather, true, true},
    {"cross_entropy(ignore_index=INT64_MIN) + accuracy", "strict_ce_accuracy", kCrossEntropyStrict, true, true},
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::int64_t> hidden = {64};
  std::int64_t batch = 16, steps = 3000;
  std::string tag = "parts";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], v = argv[i + 1];
    if (flag == "--hidden") {
      hidden.clear();
      for (const std::string& p : reglab::util::split(v, ',')) hidden.push_back(std::atoll(p.c_str()));
    } else if (flag == "--batch") {
      batch = std::atoll(v.c_str());
    } else if (flag == "--steps") {
      steps = std::atoll(v.c_str());
    } else if (flag == "--tag") {
      tag = v;
    } else {
      argc = 0;  // usage below
    }
  }
  if (argc % 2 == 0 || batch < 1 || steps < 1 || hidden.empty()) {
    std::cerr << "usage: reglab_bench_step_parts [--hidden 64[,32...]] [--batch 16] [--steps 3000] [--tag parts]\n";
    return 2;
  }
  at::set_num_threads(1);
  constexpr std::int64_t kPool = 8192, kClasses = 10;
  torch::manual_seed(1);
  const torch::Tensor x = torch::randn({kPool, 1, 28, 28});
  const torch::Tensor y = torch::randint(0, kClasses, {kPool}, torch::kLong);
  const torch::Device device(torch::kCPU);

  reglab::models::ModelOptions mo;
  mo.hidden = hidden;
  const std::size_t nv = std::size(kVariants);
  std::vector<torch::nn::Sequential> models;
  std::vector<std::unique_ptr<torch::optim::SGD>> optims;
  for (std::size_t v = 0; v < nv; ++v) {
    torch::manual_seed(0);
    models.push_back(reglab::models::make_model(mo, {1, 28, 28}, kClasses));
    optims.push_back(std::make_unique<torch::optim::SGD>(models.back()->parameters(),
                                                         torch::optim::SGDOptions(0.01).momentum(0.9)));
  }
  torch::nn::functional::CrossEntropyFuncOptions strict;
  strict.ignore_index(std::numeric_limits<std::int64_t>::min());

  std::vector<std::vector<double>> seconds(nv);
  std::int64_t correct = 0;
  for (std::int64_t s = 0; s < steps; ++s) {
    const std::int64_t start = (s * batch) % (kPool - batch);
    const torch::Tensor idx = torch::arange(start, start + batch, torch::kLong);
    for (std::size_t k = 0; k < nv; ++k) {
      const std::size_t vi = (k + static_cast<std::size_t>(s)) % nv;
      const Variant& v = kVariants[vi];
      const double t0 = thread_cpu_seconds();
      torch::Tensor xb = x.index_select(0, idx), yb = y.index_select(0, idx), ib = idx;
      if (v.to_device) {
        xb = xb.to(device);
        yb = yb.to(device);
        ib = ib.to(device);
      }
      const torch::Tensor logits = models[vi]->forward(xb);
      torch::Tensor loss;
      switch (v.loss) {
        case kCrossEntropy: loss = torch::nn::functional::cross_entropy(logits, yb); break;
        case kCrossEntropyStrict: loss = torch::nn::functional::cross_entropy(logits, yb, strict); break;
        case kGather: loss = -torch::log_softmax(logits, 1).gather(1, yb.unsqueeze(1)).mean(); break;
      }
      const double value = loss.item<double>();
      optims[vi]->zero_grad();
      loss.backward();
      optims[vi]->step();
      if (v.accuracy) correct += logits.argmax(1).eq(yb).sum().item<std::int64_t>();
      seconds[vi].push_back(thread_cpu_seconds() - t0);
      if (!(value == value)) {
        std::cerr << "reglab_bench_step_parts: NaN loss\n";
        return 1;
      }
    }
  }
  std::string h;
  for (std::int64_t w : hidden) {
    h += '-';
    h += std::to_string(w);
  }
  std::printf("step parts: MLP 784%s-10, batch %lld, %lld steps per variant, 1 thread, median CPU time per step\n",
              h.c_str(), static_cast<long long>(batch), static_cast<long long>(steps));
  const double base = median(seconds[0]);
  for (std::size_t v = 0; v < nv; ++v) {
    const double m = median(seconds[v]);
    std::printf("  %-52s %9.1f us  %+6.1f%%\n", kVariants[v].name, m * 1e6, (m / base - 1) * 100);
    std::printf("sample %s.%s_us %.3f\n", tag.c_str(), kVariants[v].key, m * 1e6);
  }
  return correct < 0 ? 1 : 0;  // keeps the accuracy work observable
}

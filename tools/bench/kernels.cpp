// kernels.cpp — the fused operations of kernels/ against the plain LibTorch
// compositions they replace, forward and backward.
//
//   reglab_bench_kernels entropy [--rows 4096] [--cols 32768] [--reps 5] [--device cpu|cuda]
//       softmax_entropy, soft_target_cross_entropy (on [rows, cols]) and
//       attention_entropy (on [16, 8, 512, 512] with a key padding mask),
//       forward + backward, fused and plain taking turns in every repetition;
//       medians and the median of per-repetition ratios. On CUDA also the
//       device copy bandwidth and the fused kernels' effective bandwidth.
//   reglab_bench_kernels lce [--tokens 8192] [--dim 512] [--vocab 1024,8192,32768,131072]
//                            [--reps 3] [--outputs 0|1] [--device cpu|cuda]
//       linear_cross_entropy (mean, no bias) vs logits = hidden @ weightᵀ and
//       cross_entropy, forward + backward. Time: both variants in this
//       process, taking turns. Peak memory: each variant alone in a child
//       process (this program, `lce-memory`): the maximum RSS on the CPU, the
//       caching allocator's peak on CUDA; "extra" is the peak minus the
//       memory held before the step (inputs already allocated).
//   reglab_bench_kernels lce-memory --variant fused|plain --vocab V [...]
//
// --threads N sets the intra-op threads (default: every online core).
//
// Each part prints a table and "sample KEY VALUE" lines (tools/bench/README.md).
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "reglab/kernels/ops.h"

#if defined(REGLAB_KERNELS_WITH_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace {

namespace rk = reglab::kernels;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string part;
  std::map<std::string, std::string> opts;
  std::string get(const std::string& key, const std::string& fallback) const {
    auto it = opts.find(key);
    return it == opts.end() ? fallback : it->second;
  }
  std::int64_t num(const std::string& key, std::int64_t fallback) const {
    return std::stoll(get(key, std::to_string(fallback)));
  }
};

Args parse(int argc, char** argv) {
  Args a;
  if (argc < 2) throw std::runtime_error("usage: reglab_bench_kernels entropy|lce|lce-memory [--key value]...");
  a.part = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string k = argv[i];
    if (k.rfind("--", 0) != 0 || i + 1 >= argc) throw std::runtime_error("bad argument: " + k);
    a.opts[k.substr(2)] = argv[++i];
  }
  return a;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void sync(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

double time_it(const torch::Device& device, const std::function<void()>& fn) {
  sync(device);
  const auto t0 = Clock::now();
  fn();
  sync(device);
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string machine_line() {
  std::ifstream cpu("/proc/cpuinfo");
  std::string line, model = "?";
  while (std::getline(cpu, line)) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  std::ostringstream s;
  s << "machine: " << model << ", " << sysconf(_SC_NPROCESSORS_ONLN) << " cores; intra-op threads "
    << at::get_num_threads() << "; CPU path " << (rk::cpu_path() == rk::CpuPath::kAvx2 ? "avx2" : "portable");
  return s.str();
}

// ---- entropy part -------------------------------------------------------------

struct Pair {
  std::string name;
  std::function<void()> fused, plain;
  double bytes_moved = 0;  // fused forward + backward, for the bandwidth line on CUDA
};

int run_entropy(const Args& a) {
  const torch::Device device(a.get("device", "cpu"));
  const std::int64_t rows = a.num("rows", 4096), cols = a.num("cols", 32768), reps = a.num("reps", 5);
  std::cout << machine_line() << "; device " << device << "\n";
  std::cout << "forward + backward, fused vs plain composition with autograd, " << reps
            << " repetitions (variants take turns)\n";
  torch::manual_seed(0);
  const auto opts = torch::TensorOptions().device(device).dtype(torch::kFloat);
  const torch::Tensor z = torch::randn({rows, cols}, opts) * 2;
  const torch::Tensor t = torch::softmax(torch::randn({rows, cols}, opts), 1);
  const torch::Tensor za = torch::randn({16, 8, 512, 512}, opts);
  const torch::Tensor lengths = torch::randint(64, 513, {16}, torch::TensorOptions().device(device));
  const torch::Tensor key_mask =
      (torch::arange(512, torch::TensorOptions().device(device)).view({1, 512}) < lengths.view({16, 1}))
          .view({16, 1, 1, 512});
  const double zbytes = static_cast<double>(z.numel()) * 4;

  auto leaf = [](const torch::Tensor& x) { return x.detach().requires_grad_(); };
  std::vector<Pair> pairs;
  pairs.push_back({"softmax_entropy",
                   [&] { rk::softmax_entropy(leaf(z)).sum().backward(); },
                   [&] {
                     const torch::Tensor x = leaf(z);
                     const torch::Tensor log_p = torch::log_softmax(x, 1);
                     (-(log_p.exp() * log_p).sum(1)).sum().backward();
                   },
                   3 * zbytes});  // forward reads z; backward reads z, writes the gradient
  pairs.push_back({"soft_target_cross_entropy",
                   [&] { rk::soft_target_cross_entropy(leaf(z), t).sum().backward(); },
                   [&] { (-(t * torch::log_softmax(leaf(z), 1)).sum(1)).sum().backward(); }, 5 * zbytes});
  pairs.push_back({"attention_entropy",
                   [&] { rk::attention_entropy(leaf(za), key_mask).sum().backward(); },
                   [&] {
                     const torch::Tensor x = leaf(za);
                     const torch::Tensor allowed = key_mask.expand(x.sizes());
                     const torch::Tensor log_p = torch::log_softmax(x.masked_fill(allowed.logical_not(), -INFINITY), -1);
                     (-(log_p.exp() * log_p.masked_fill(allowed.logical_not(), 0.0)).sum(-1)).sum().backward();
                   },
                   3.0 * static_cast<double>(za.numel()) * 4});

  for (auto& p : pairs) {  // warm-up: allocator, thread pools, kernels
    p.fused();
    p.plain();
  }
  sync(device);
  std::printf("\n%-28s %12s %12s %10s %10s\n", "operation", "fused ms", "plain ms", "speed-up", "paired");
  for (auto& p : pairs) {
    std::vector<double> tf, tp, ratio;
    for (std::int64_t r = 0; r < reps; ++r) {
      double f, q;
      if (r % 2 == 0) {
        f = time_it(device, p.fused);
        q = time_it(device, p.plain);
      } else {
        q = time_it(device, p.plain);
        f = time_it(device, p.fused);
      }
      tf.push_back(f);
      tp.push_back(q);
      ratio.push_back(q / f);
      std::printf("sample kernels.%s.fused_s %.6f\nsample kernels.%s.plain_s %.6f\n", p.name.c_str(), f,
                  p.name.c_str(), q);
    }
    std::printf("%-28s %12.2f %12.2f %9.2fx %9.2fx\n", p.name.c_str(), 1e3 * median(tf), 1e3 * median(tp),
                median(tp) / median(tf), median(ratio));
    std::printf("sample kernels.%s.speedup %.4f\n", p.name.c_str(), median(ratio));
  }

  if (device.is_cuda()) {
    // Device copy bandwidth (read + write of one [rows, cols] float tensor)
    // against the fused kernels' effective bandwidth (bytes they must move).
    torch::Tensor dst = torch::empty_like(z);
    dst.copy_(z);
    std::vector<double> tc;
    for (std::int64_t r = 0; r < reps; ++r) tc.push_back(time_it(device, [&] { dst.copy_(z); }));
    const double copy_bw = 2 * zbytes / median(tc);
    std::printf("\ndevice copy bandwidth: %.1f GB/s\n", copy_bw / 1e9);
    std::printf("sample kernels.copy_GBps %.3f\n", copy_bw / 1e9);
    torch::Tensor x = leaf(z);
    std::vector<double> fw, bw;
    for (std::int64_t r = 0; r < reps; ++r) {
      torch::Tensor h;
      fw.push_back(time_it(device, [&] { h = rk::softmax_entropy(x); }));
      const torch::Tensor g = torch::ones_like(h);
      bw.push_back(time_it(device, [&] { h.backward(g); }));
      x.mutable_grad().reset();
    }
    const double fwd_bw = zbytes / median(fw), bwd_bw = 2 * zbytes / median(bw);
    std::printf("softmax_entropy forward:  %.1f GB/s (%.0f%% of copy)\n", fwd_bw / 1e9, 100 * fwd_bw / copy_bw);
    std::printf("softmax_entropy backward: %.1f GB/s (%.0f%% of copy)\n", bwd_bw / 1e9, 100 * bwd_bw / copy_bw);
    std::printf("sample kernels.softmax_entropy.fwd_copy_fraction %.4f\n", fwd_bw / copy_bw);
    std::printf("sample kernels.softmax_entropy.bwd_copy_fraction %.4f\n", bwd_bw / copy_bw);
  }
  return 0;
}

// ---- linear cross-entropy part ------------------------------------------------

std::int64_t rss_kib(const char* field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field, 0) == 0) return std::stoll(line.substr(std::string(field).size()));
  }
  return -1;
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// The inputs of one linear cross-entropy problem, and one training step
// (forward + backward of the mean loss) of either variant.
struct LceProblem {
  torch::Device device;
  torch::Tensor hidden, weight, targets;
  rk::LinearCrossEntropyOptions options;

  LceProblem(const Args& a, std::int64_t v) : device(a.get("device", "cpu")) {
    // --outputs 1: also ask for the per-token entropy and log p(target), which
    // makes the backward pass form the logits again (the recomputing path).
    options.return_entropy = options.return_target_logprob = a.num("outputs", 0) != 0;
    const std::int64_t n = a.num("tokens", 8192), d = a.num("dim", 512);
    torch::manual_seed(0);
    const auto opts = torch::TensorOptions().device(device).dtype(torch::kFloat);
    hidden = (torch::randn({n, d}, opts) / std::sqrt(static_cast<double>(d))).requires_grad_();
    weight = torch::randn({v, d}, opts).requires_grad_();
    targets = torch::randint(0, v, {n}, torch::TensorOptions().device(device).dtype(torch::kLong));
  }

  void step(const std::string& variant) {
    hidden.mutable_grad().reset();
    weight.mutable_grad().reset();
    torch::Tensor loss;
    if (variant == "fused") {
      loss = rk::linear_cross_entropy(hidden, weight, targets, {}, options).loss;
    } else if (variant == "plain") {
      loss = torch::nn::functional::cross_entropy(hidden.mm(weight.t()), targets);
    } else {
      throw std::runtime_error("unknown variant " + variant);
    }
    loss.backward();
  }
};

// Peak memory of one variant, alone in this process: prints
// "result <peak MiB> <extra MiB> <seconds>".
int run_lce_memory(const Args& a) {
  const std::string variant = a.get("variant", "fused");
  {
    // One small step first, so that what every first step allocates once
    // (BLAS buffers, thread stacks) counts as baseline, not as this variant's.
    Args small = a;
    small.opts["tokens"] = "64";
    LceProblem warm(small, 64);
    warm.step(variant);
  }
  LceProblem p(a, a.num("vocab", 32768));
  // Linux resets the peak RSS (VmHWM) to the current RSS on "5"; without that,
  // the peak is the process's lifetime maximum, which the small step above
  // stays well below.
  const bool peak_reset = static_cast<bool>(std::ofstream("/proc/self/clear_refs") << "5");
  double baseline_mib = static_cast<double>(rss_kib("VmRSS:")) / 1024;
#if defined(REGLAB_KERNELS_WITH_CUDA)
  const c10::DeviceIndex dev = p.device.index() < 0 ? 0 : p.device.index();
  if (p.device.is_cuda()) {
    torch::cuda::synchronize();
    c10::cuda::CUDACachingAllocator::resetPeakStats(dev);
    baseline_mib = static_cast<double>(c10::cuda::CUDACachingAllocator::getDeviceStats(dev).allocated_bytes[0].current) /
                   (1 << 20);
  }
#endif
  const double seconds = time_it(p.device, [&] { p.step(variant); });
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  double peak_mib = static_cast<double>(peak_reset ? rss_kib("VmHWM:") : u.ru_maxrss) / 1024;
#if defined(REGLAB_KERNELS_WITH_CUDA)
  if (p.device.is_cuda()) {
    peak_mib = static_cast<double>(c10::cuda::CUDACachingAllocator::getDeviceStats(dev).allocated_bytes[0].peak) /
               (1 << 20);
  }
#endif
  std::printf("result %.1f %.1f %.3f\n", peak_mib, peak_mib - baseline_mib, seconds);
  return 0;
}

struct Memory {
  double peak_mib = 0, extra_mib = 0, seconds = 0;
};

Memory spawn_memory(const std::string& self, const Args& a, const std::string& variant, std::int64_t vocab) {
  std::ostringstream cmd;
  cmd << self << " lce-memory --variant " << variant << " --vocab " << vocab << " --tokens "
      << a.num("tokens", 8192) << " --dim " << a.num("dim", 512) << " --device " << a.get("device", "cpu")
      << " --threads " << at::get_num_threads() << " --outputs " << a.num("outputs", 0);
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.str().c_str(), "r"), pclose);
  if (!pipe) throw std::runtime_error("cannot run " + cmd.str());
  std::array<char, 4096> buf{};
  std::string out;
  while (fgets(buf.data(), buf.size(), pipe.get()) != nullptr) out += buf.data();
  const auto pos = out.find("result");
  if (pos == std::string::npos) throw std::runtime_error(cmd.str() + " failed:\n" + out);
  Memory m;
  std::istringstream(out.substr(pos + 6)) >> m.peak_mib >> m.extra_mib >> m.seconds;
  return m;
}

int run_lce(const Args& a, const std::string& self) {
  std::vector<std::int64_t> vocabs;
  {
    std::stringstream list(a.get("vocab", "1024,8192,32768,131072"));
    std::string item;
    while (std::getline(list, item, ',')) vocabs.push_back(std::stoll(item));
  }
  const std::int64_t n = a.num("tokens", 8192), d = a.num("dim", 512), reps = a.num("reps", 3);
  std::cout << machine_line() << "; device " << a.get("device", "cpu") << "\n";
  std::cout << "linear_cross_entropy vs mm + cross_entropy, N=" << n << " D=" << d
            << ", forward + backward of the mean loss"
            << (a.num("outputs", 0) != 0 ? " (fused: with entropy and log p outputs, recomputing)" : "") << ".\n"
            << "time: both variants in this process, alternating, " << reps
            << " repetitions after a warm-up; medians of wall and process CPU time, and the median of the\n"
            << "per-repetition wall ratios. memory: each variant alone in a child process, one step; peak = max\n"
            << "RSS (CUDA: the caching allocator's peak), extra = peak minus the memory held before the step.\n\n";
  std::printf("%8s %9s %9s %8s %8s %9s %9s %11s %11s %11s %11s %7s\n", "V", "fused s", "plain s", "wall", "paired",
              "fused cpu", "plain cpu", "fused peak", "plain peak", "fused extra", "plain extra", "memory");
  std::fflush(stdout);
  for (std::int64_t v : vocabs) {
    const Memory mf = spawn_memory(self, a, "fused", v);
    const Memory mp = spawn_memory(self, a, "plain", v);
    LceProblem p(a, v);
    p.step("fused");  // warm-up: allocator, BLAS threads
    p.step("plain");
    std::vector<double> wf, wp, cf, cp, ratio;
    for (std::int64_t r = 0; r < reps; ++r) {
      const std::string first = r % 2 == 0 ? "fused" : "plain", second = r % 2 == 0 ? "plain" : "fused";
      double w[2], c[2];
      for (int i = 0; i < 2; ++i) {
        const double c0 = cpu_seconds();
        w[i] = time_it(p.device, [&] { p.step(i == 0 ? first : second); });
        c[i] = cpu_seconds() - c0;
      }
      const int fi = first == "fused" ? 0 : 1;
      wf.push_back(w[fi]);
      wp.push_back(w[1 - fi]);
      cf.push_back(c[fi]);
      cp.push_back(c[1 - fi]);
      ratio.push_back(w[fi] / w[1 - fi]);
    }
    const long long vv = static_cast<long long>(v);
    std::printf("%8lld %9.3f %9.3f %7.2fx %7.2fx %9.2f %9.2f %7.0f MiB %7.0f MiB %7.0f MiB %7.0f MiB %6.1fx\n", vv,
                median(wf), median(wp), median(wf) / median(wp), median(ratio), median(cf), median(cp), mf.peak_mib,
                mp.peak_mib, mf.extra_mib, mp.extra_mib, mp.extra_mib / std::max(mf.extra_mib, 1.0));
    std::printf("sample kernels.lce.V%lld.fused_s %.6f\nsample kernels.lce.V%lld.plain_s %.6f\n", vv, median(wf), vv,
                median(wp));
    std::printf("sample kernels.lce.V%lld.time_ratio %.4f\n", vv, median(ratio));
    std::printf("sample kernels.lce.V%lld.fused_extra_MiB %.1f\nsample kernels.lce.V%lld.plain_extra_MiB %.1f\n", vv,
                mf.extra_mib, vv, mp.extra_mib);
    std::fflush(stdout);
  }
  std::cout << "\nwall = fused/plain median wall time, paired = median of per-repetition ratios (target <= 1.2x);\n"
            << "memory = plain extra / fused extra (target >= 10x)\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse(argc, argv);
    at::set_num_threads(static_cast<int>(a.num("threads", sysconf(_SC_NPROCESSORS_ONLN))));
    if (a.part == "entropy") return run_entropy(a);
    if (a.part == "lce") {
      // The children are this same program; /proc/self/exe would name the
      // shell that popen starts, so resolve it here.
      std::array<char, PATH_MAX> self{};
      const ssize_t len = readlink("/proc/self/exe", self.data(), self.size() - 1);
      if (len <= 0) throw std::runtime_error("cannot resolve /proc/self/exe");
      return run_lce(a, std::string(self.data(), static_cast<std::size_t>(len)));
    }
    if (a.part == "lce-memory") return run_lce_memory(a);
    std::cerr << "unknown part '" << a.part << "' (entropy, lce, lce-memory)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "reglab_bench_kernels: " << e.what() << "\n";
    return 1;
  }
}

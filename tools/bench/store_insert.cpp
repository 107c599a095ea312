// store_insert.cpp — metric points per second through Store::add_metrics.
//
// Opens a fresh database in a temporary folder (the store's own settings: WAL,
// synchronous=NORMAL), creates one run, and writes `batches` batches of
// `points` points each, every point a new (key, step) so each one is an
// INSERT, not a replacement. 100 metric keys, realistic names. The points of
// a batch come step by step, all keys of a step together, as a recorder
// collects them (--order interleaved, the default), or sorted by key, the
// order of the table's primary key (--order sorted). Prints the
// points/s over all batches and the median and slowest batch, plus
// "sample KEY VALUE" lines for tools/bench/run_all. No torch.
//
//   reglab_bench_store [--batches 20] [--points 50000] [--order interleaved|sorted] [--dir /tmp]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <unistd.h>

#include "store/store.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  int batches = 20;
  std::int64_t points = 50000;
  fs::path base = fs::temp_directory_path();
  std::string order = "interleaved";
  const char* kUsage =
      "usage: reglab_bench_store [--batches 20] [--points 50000] [--order interleaved|sorted] [--dir /tmp]\n";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], v = argv[i + 1];
    if (flag == "--batches") batches = std::atoi(v.c_str());
    else if (flag == "--points") points = std::atoll(v.c_str());
    else if (flag == "--dir") base = v;
    else if (flag == "--order") order = v;
    else {
      std::cerr << kUsage;
      return 2;
    }
  }
  if (batches < 1 || points < 1 || argc % 2 == 0 || (order != "interleaved" && order != "sorted")) {
    std::cerr << kUsage;
    return 2;
  }
  const fs::path dir = base / ("reglab_bench_store_" + std::to_string(getpid()));
  try {
    fs::create_directories(dir);
    double total_s = 0;
    std::vector<double> batch_s;
    {
      reglab::store::Store store(dir / "bench.db");
      const std::int64_t sweep = store.upsert_sweep("bench_store", "", "");
      const std::int64_t run = store.ensure_run(sweep, "0000000000000000", "bench", "{}", "ce");
      constexpr int kKeys = 100;
      std::vector<std::string> keys;
      for (int k = 0; k < kKeys; ++k) keys.push_back("method.stat_" + std::to_string(k) + ".mean");
      const std::int64_t steps_per_batch = (points + kKeys - 1) / kKeys;
      for (int b = 0; b < batches; ++b) {
        std::vector<reglab::store::MetricPoint> batch;
        batch.reserve(static_cast<std::size_t>(points));
        for (std::int64_t i = 0; i < points; ++i) {
          batch.push_back({keys[static_cast<std::size_t>(i % kKeys)], b * steps_per_batch + i / kKeys,
                           0.001 * static_cast<double>(i)});
        }
        if (order == "sorted") {
          std::sort(batch.begin(), batch.end(), [](const auto& x, const auto& y) {
            return x.key != y.key ? x.key < y.key : x.step < y.step;
          });
        }
        const auto t0 = std::chrono::steady_clock::now();
        store.add_metrics(run, batch);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        batch_s.push_back(s);
        total_s += s;
        std::printf("sample store_%s.batch_points_per_s %.1f\n", order.c_str(), static_cast<double>(points) / s);
      }
      // Every point must have landed (each one a distinct row).
      const auto n = store.metrics(run, "method.stat_0.mean").size();
      if (n != static_cast<std::size_t>(batches * steps_per_batch)) {
        std::cerr << "reglab_bench_store: expected " << batches * steps_per_batch << " rows of one key, found " << n
                  << "\n";
        return 1;
      }
    }
    std::sort(batch_s.begin(), batch_s.end());
    const double total = static_cast<double>(points) * batches;
    std::printf("store: %d batches x %lld points (%s) into %s: %.3f s, %.0f points/s (median batch %.4f s, "
                "slowest %.4f s)\n",
                batches, static_cast<long long>(points), order.c_str(), (dir / "bench.db").c_str(), total_s,
                total / total_s,
                batch_s[batch_s.size() / 2], batch_s.back());
    std::printf("sample store_%s.points_per_s %.1f\n", order.c_str(), total / total_s);
    fs::remove_all(dir);
  } catch (const std::exception& e) {
    std::cerr << "reglab_bench_store: " << e.what() << "\n";
    fs::remove_all(dir);
    return 1;
  }
  return 0;
}

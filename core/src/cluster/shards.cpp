#include "cluster/shards.h"

#include <algorithm>
#include <stdexcept>

#include "cluster/records.h"
#include "store/shard_merge.h"

namespace reglab::cluster {

namespace fs = std::filesystem;

namespace {

bool finished(store::RunStatus s) {
  return s == store::RunStatus::kCompleted || s == store::RunStatus::kFailed || s == store::RunStatus::kInterrupted;
}

}  // namespace

fs::path shard_directory(const fs::path& results_dir, const std::string& sweep) {
  return results_dir / "shards" / sweep;
}

fs::path shard_path(const fs::path& results_dir, const std::string& sweep, const std::string& key) {
  return shard_directory(results_dir, sweep) / (key + ".db");
}

std::optional<store::RunStatus> peek_shard(const fs::path& shard) {
  if (!fs::exists(shard)) return std::nullopt;
  return store::peek_run_status(shard);
}

MergeOutcome merge_shard(store::Store& main, const fs::path& shard) {
  auto fail = [&](const std::string& why) { return std::runtime_error("shard " + shard.string() + ": " + why); };
  if (!fs::exists(shard)) throw fail("no such file");
  std::unique_ptr<store::Store> src;
  try {
    src = std::make_unique<store::Store>(shard, store::Journal::kRollback);
  } catch (const std::exception& e) {
    throw fail(e.what());
  }
  const auto runs = src->list_runs();
  if (runs.size() != 1) throw fail("holds " + std::to_string(runs.size()) + " runs; a shard holds exactly one");
  const store::RunRow& r = runs.front();
  MergeOutcome out;
  out.shard_status = r.status;
  const auto sweep = main.find_sweep(r.sweep_name);
  if (!sweep) throw fail("its sweep '" + r.sweep_name + "' is not in " + main.path().string());
  const auto target = store::find_live_run(main, sweep->id, r.key);
  if (!target) throw fail("its run " + r.key + " is not in sweep '" + r.sweep_name + "' of " + main.path().string());
  out.run_id = target->id;
  if (!finished(r.status)) return out;  // kInProgress
  if (target->status == store::RunStatus::kCompleted) {
    out.result = MergeResult::kRunCompleted;
    return out;
  }
  const std::string state =
      std::string(store::to_string(r.status)) + " " + r.finished_at + " attempt " + std::to_string(r.attempts);
  const std::string shard_name = fs::absolute(shard).lexically_normal().string();
  if (store::copy_shard_run(main, *src, r.id, target->id, shard_name, state) == store::ShardCopy::kAlreadyMerged) {
    out.result = MergeResult::kAlreadyMerged;
    return out;
  }
  out.result = MergeResult::kMerged;
  return out;
}

CollectResult collect_sweep(store::Store& main, const std::string& sweep, const fs::path& results_dir,
                            const SlurmView& view) {
  const auto sw = main.find_sweep(sweep);
  if (!sw) throw std::runtime_error("no sweep named '" + sweep + "' in " + main.path().string());
  CollectResult result;
  const fs::path dir = shard_directory(results_dir, sweep);
  std::vector<fs::path> shards;
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file() && e.path().extension() == ".db") shards.push_back(e.path());
  std::sort(shards.begin(), shards.end());
  // A shard is named by its run's key: runs already complete are skipped
  // without opening their shard, so collecting a finished sweep again is cheap.
  std::map<std::string, store::RunStatus> status_of_key;
  for (const auto& r : main.list_runs(sw->id)) status_of_key[r.key] = r.status;
  std::map<std::int64_t, store::RunStatus> shard_status;
  for (const auto& shard : shards) {
    if (auto it = status_of_key.find(shard.stem().string());
        it != status_of_key.end() && it->second == store::RunStatus::kCompleted) {
      ++result.run_completed;
      continue;
    }
    try {
      const MergeOutcome o = merge_shard(main, shard);
      shard_status[o.run_id] = o.shard_status;
      switch (o.result) {
        case MergeResult::kMerged: ++result.merged; break;
        case MergeResult::kAlreadyMerged: ++result.already_merged; break;
        case MergeResult::kRunCompleted: ++result.run_completed; break;
        case MergeResult::kInProgress: ++result.in_progress; break;
      }
    } catch (const std::exception& e) {
      result.problems.push_back(e.what());
    }
  }
  if (view.empty()) return result;
  // Elements Slurm has ended while their trial had not finished: the shard is
  // missing (never started), still says running (killed hard: out of memory,
  // node failure), or says interrupted (cancelled, time limit).
  for (const auto& [run_id, element] : current_elements(main, sw->id)) {
    const auto it = view.find(element);
    if (it == view.end() || !is_terminal(it->second.state)) continue;
    const auto run = main.get_run(run_id);
    if (!run || run->status == store::RunStatus::kCompleted) continue;
    if (run->status == store::RunStatus::kFailed) continue;  // already recorded, by the trial or by us
    const auto ss = shard_status.find(run_id);
    std::string why = describe(element, it->second);
    if (it->second.state == "COMPLETED")
      why += ": the element ended but its trial recorded no result";
    if (ss == shard_status.end())
      why += "; the trial never started (no shard)";
    else if (!run->error.empty())
      why += "; the trial said: " + run->error.substr(0, run->error.find('\n'));
    main.mark_finished(run_id, store::RunStatus::kFailed, why);
    ++result.failed_by_slurm;
  }
  return result;
}

}  // namespace reglab::cluster

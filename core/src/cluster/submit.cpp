#include "cluster/submit.h"

#include <ctime>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>

#include "cluster/manifest.h"
#include "cluster/records.h"
#include "stages/checkpoint.h"
#include "util/util.h"

namespace reglab::cluster {

namespace fs = std::filesystem;

namespace {

fs::path results_dir_of(const fs::path& db) {
  return fs::absolute(db).parent_path();
}

// A folder per submission, named by UTC time; a suffix keeps two submissions
// within one second apart.
fs::path new_submission_folder(const fs::path& results, const std::string& sweep) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  fs::path base = results / "slurm" / sweep / stamp;
  fs::path dir = base;
  for (int i = 2; fs::exists(dir); ++i) dir = base.string() + "-" + std::to_string(i);
  fs::create_directories(dir / "logs");
  return dir;
}

void write_script(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path.string());
  fs::permissions(path, fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec, fs::perm_options::add);
}

}  // namespace

SlurmView view_of_sweep(store::Store& main, std::int64_t sweep_id, SlurmClient& slurm) {
  std::vector<std::int64_t> ids;
  for (const auto& j : jobs_of_sweep(main, sweep_id)) ids.push_back(j.job_id);
  return slurm.query(ids);
}

SubmitResult submit_sweep(const sweep::Sweep& sw, const SubmitOptions& opt, SlurmClient& slurm) {
  SubmitResult result;
  result.total = static_cast<int>(sw.trials.size());
  store::Store main(opt.db);
  const fs::path results = results_dir_of(opt.db);
  const std::int64_t sweep_id = main.upsert_sweep(sw.name, sw.description, sw.toml_text);
  const SlurmView view = view_of_sweep(main, sweep_id, slurm);
  result.collected = collect_sweep(main, sw.name, results, view);
  const auto elements = current_elements(main, sweep_id);

  std::vector<store::NewRun> wanted;
  wanted.reserve(sw.trials.size());
  for (const auto& t : sw.trials) {
    const std::string method = t.config.contains("method") ? t.config["method"].value("name", "") : "";
    wanted.push_back({t.key, t.label, t.config.dump(), method});
  }
  const std::vector<std::int64_t> ids = main.ensure_runs(sweep_id, wanted);
  std::map<std::int64_t, store::RunStatus> status;
  for (const auto& r : main.list_runs(sweep_id)) status[r.id] = r.status;

  std::vector<ManifestEntry> entries;
  std::vector<std::int64_t> run_of_element;
  for (std::size_t i = 0; i < sw.trials.size(); ++i) {
    const auto& t = sw.trials[i];
    const std::int64_t id = ids[i];
    if (status[id] == store::RunStatus::kCompleted) {
      ++result.completed;
      continue;
    }
    if (auto e = elements.find(id); e != elements.end()) {
      // Queued, running, or requeued: the earlier submission will finish it.
      // An element Slurm no longer knows at all has ended long ago.
      auto v = view.find(e->second);
      if (v != view.end() && !is_terminal(v->second.state)) {
        ++result.active;
        continue;
      }
    }
    entries.push_back({sw.name, sw.description, t.key, t.label, wanted[i].method_name, t.config});
    run_of_element.push_back(id);
  }
  result.submitted = static_cast<int>(entries.size());
  if (entries.empty()) return result;
  if (result.submitted > opt.max_array_size - 1)
    throw std::runtime_error(std::to_string(result.submitted) + " trials to submit, but Slurm's MaxArraySize (" +
                             std::to_string(opt.max_array_size) +
                             ") caps an array at " + std::to_string(opt.max_array_size - 1) +
                             " elements; pass --max-array-size with your cluster's value (scontrol show config)");

  // Stages first, as their own array.
  std::vector<ManifestEntry> stage_entries;
  std::vector<std::int64_t> stage_runs;
  std::vector<std::int64_t> wait_for;  // stage arrays the trial array depends on
  std::int64_t stages_sweep_id = 0;
  if (!sw.stages.empty()) {
    std::set<std::string> submitted;
    for (const auto& e : entries) submitted.insert(e.key);
    std::set<std::string> needed;
    for (const auto& t : sw.trials)
      if (!t.stage.empty() && submitted.count(t.key)) needed.insert(t.stage);
    stages_sweep_id = main.upsert_sweep(sweep::kStagesSweep, "stages: configurations that trials start from (init.from)", "");
    const SlurmView stage_view = view_of_sweep(main, stages_sweep_id, slurm);
    collect_sweep(main, sweep::kStagesSweep, results, stage_view);
    const auto stage_elements = current_elements(main, stages_sweep_id);
    for (const auto& st : sw.stages) {
      if (!needed.count(st.key)) continue;
      const stages::StageCheck check = stages::check_stage(main, st.key, results);
      if (check.usable()) continue;
      const std::string method = st.config.contains("method") ? st.config["method"].value("name", "") : "";
      const std::int64_t id = main.ensure_run(stages_sweep_id, st.key, "stage " + st.file.filename().string(),
                                              st.config.dump(), method);
      if (auto e = stage_elements.find(id); e != stage_elements.end()) {
        auto v = stage_view.find(e->second);
        if (v != stage_view.end() && !is_terminal(v->second.state)) {
          wait_for.push_back(e->second.first);  // an earlier submission is producing it
          continue;
        }
      }
      if (main.get_run(id)->status == store::RunStatus::kCompleted) {
        // Completed but its checkpoint fails the check: produce it again from
        // scratch, never from the bad file or the finished shard.
        std::error_code ec;
        fs::remove(stages::stage_checkpoint_path(results, st.key), ec);
        fs::remove(shard_path(results, sweep::kStagesSweep, st.key), ec);
        main.reset_run(id, check.problem + "; rebuilding it");
      }
      stage_entries.push_back({sweep::kStagesSweep, "", st.key, "stage " + st.file.filename().string(), method, st.config});
      stage_runs.push_back(id);
    }
  }

  result.folder = new_submission_folder(results, sw.name);
  if (!stage_entries.empty()) {
    ArrayJob stage_job;
    stage_job.name = "reglab-stages-" + sw.name;
    stage_job.size = static_cast<int>(stage_entries.size());
    stage_job.reglab = opt.reglab;
    stage_job.manifest = result.folder / "stages.jsonl";
    stage_job.shard_dir = shard_directory(results, sweep::kStagesSweep);
    stage_job.results_dir = results;
    stage_job.log_dir = result.folder / "logs";
    write_manifest(stage_job.manifest, stage_entries);
    fs::create_directories(stage_job.shard_dir);
    const fs::path stage_script = result.folder / "stages.sbatch";
    write_script(stage_script, render_array_script(stage_job, opt.slurm));
    result.stage_job_id = slurm.sbatch(stage_script);
    result.stages_submitted = stage_job.size;
    record_array(main, stages_sweep_id, {result.stage_job_id, "trials", stage_job.size, stage_script.string(), ""},
                 stage_runs);
    wait_for.push_back(result.stage_job_id);
  }
  const fs::path manifest = result.folder / "manifest.jsonl";
  write_manifest(manifest, entries);
  ArrayJob job;
  job.name = "reglab-" + sw.name;
  job.size = result.submitted;
  job.reglab = opt.reglab;
  job.manifest = manifest;
  job.shard_dir = shard_directory(results, sw.name);
  job.results_dir = results;
  job.log_dir = result.folder / "logs";
  fs::create_directories(job.shard_dir);
  const fs::path array_script = result.folder / "job.sbatch";
  const fs::path collect_script = result.folder / "collect.sbatch";
  write_script(array_script, render_array_script(job, opt.slurm));
  write_script(collect_script, render_collect_script("reglab-collect-" + sw.name, opt.reglab, fs::absolute(opt.db),
                                                     sw.name, job.log_dir, opt.slurm));

  std::vector<std::string> array_args;
  if (!wait_for.empty()) {
    std::string dep = "--dependency=afterok";
    for (auto id : wait_for) dep += ":" + std::to_string(id);
    array_args = {dep, "--kill-on-invalid-dep=yes"};
  }
  result.job_id = slurm.sbatch(array_script, array_args);
  // Recorded before the collect job is submitted: if that fails, the array
  // still runs and `reglab collect` merges it by hand.
  JobRecord array{result.job_id, "trials", job.size, array_script.string(), ""};
  record_array(main, sweep_id, array, run_of_element);
  result.collect_job_id =
      slurm.sbatch(collect_script, {"--dependency=afterany:" + std::to_string(result.job_id), "--kill-on-invalid-dep=yes"});
  record_job(main, sweep_id, JobRecord{result.collect_job_id, "collect", 0, collect_script.string(), ""});
  return result;
}

std::vector<RunState> sweep_status(store::Store& main, const std::string& sweep, SlurmClient& slurm) {
  const auto sw = main.find_sweep(sweep);
  if (!sw) throw std::runtime_error("no sweep named '" + sweep + "' in " + main.path().string());
  const SlurmView view = view_of_sweep(main, sw->id, slurm);
  const auto elements = current_elements(main, sw->id);
  const fs::path results = results_dir_of(main.path());
  std::vector<RunState> out;
  for (const auto& r : main.list_runs(sw->id)) {
    RunState s;
    s.run_id = r.id;
    s.key = r.key;
    s.label = r.label;
    s.store_status = store::to_string(r.status);
    s.error = r.error.substr(0, r.error.find('\n'));
    if (r.status != store::RunStatus::kCompleted) {
      try {
        if (auto st = peek_shard(shard_path(results, sweep, r.key))) s.shard_status = store::to_string(*st);
      } catch (const std::exception&) {
        s.shard_status = "unreadable";
      }
    }
    if (auto e = elements.find(r.id); e != elements.end()) {
      s.element = e->second;
      if (auto v = view.find(e->second); v != view.end()) s.slurm = v->second;
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<std::int64_t> cancel_sweep(store::Store& main, const std::string& sweep, SlurmClient& slurm) {
  const auto sw = main.find_sweep(sweep);
  if (!sw) throw std::runtime_error("no sweep named '" + sweep + "' in " + main.path().string());
  std::vector<std::int64_t> arrays;
  for (const auto& j : jobs_of_sweep(main, sw->id))
    if (j.kind == "trials") arrays.push_back(j.job_id);
  const SlurmView view = slurm.query(arrays);
  std::set<std::int64_t> live;
  for (const auto& [id, s] : view)
    if (!is_terminal(s.state)) live.insert(id.first);
  std::vector<std::int64_t> ids(live.begin(), live.end());
  slurm.cancel(ids);
  return ids;
}

}  // namespace reglab::cluster

#include "cluster/slurm.h"

#include <cstdlib>
#include <sstream>
#include <stdexcept>

#include "util/process.h"
#include "util/util.h"

namespace reglab::cluster {

namespace fs = std::filesystem;

namespace {

// Single-quoted for bash: the path survives spaces and $.
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

// #SBATCH lines are not parsed by a shell: a value with whitespace would be
// cut at the first blank, so it is refused instead of submitted wrong.
std::string directive(const std::string& option, const std::string& value = "") {
  const std::string text = value.empty() ? option : option + "=" + value;
  for (char c : text)
    if (c == ' ' || c == '\t' || c == '\n')
      throw std::invalid_argument("cannot write '#SBATCH " + text +
                                  "': Slurm directives may not contain blanks (move the folder or pass a path without spaces)");
  return "#SBATCH " + text + "\n";
}

std::string common_directives(const SlurmOptions& o) {
  std::string s;
  if (!o.partition.empty()) s += directive("--partition", o.partition);
  if (!o.account.empty()) s += directive("--account", o.account);
  if (!o.mem.empty()) s += directive("--mem", o.mem);
  if (!o.time.empty()) s += directive("--time", o.time);
  for (const auto& a : o.sbatch_args) s += directive(a);
  return s;
}

// "4-9%2", "4,6-9", "7" -> indices (the throttle after % is dropped).
std::vector<int> expand_indices(std::string spec) {
  if (auto pct = spec.find('%'); pct != std::string::npos) spec.resize(pct);
  std::vector<int> out;
  for (const auto& part : util::split(spec, ',')) {
    if (part.empty()) continue;
    const auto dash = part.find('-');
    const int lo = std::stoi(part.substr(0, dash));
    const int hi = dash == std::string::npos ? lo : std::stoi(part.substr(dash + 1));
    for (int i = lo; i <= hi; ++i) out.push_back(i);
  }
  return out;
}

// Adds the element(s) named by a JobID field ("42_3", "42_[4-9%2]", "42")
// with the given state.
void add_elements(SlurmView& view, const std::string& job_field, const ElementState& state) {
  const std::string id = util::trim(job_field);
  if (id.empty()) return;
  const auto us = id.find('_');
  try {
    const std::int64_t job = std::stoll(id.substr(0, us));
    if (us == std::string::npos) {
      view[{job, -1}] = state;
      return;
    }
    std::string rest = id.substr(us + 1);
    if (!rest.empty() && rest.front() == '[') {
      rest = rest.substr(1, rest.find(']') - 1);
      for (int i : expand_indices(rest)) view[{job, i}] = state;
    } else {
      view[{job, std::stoi(rest)}] = state;
    }
  } catch (const std::exception&) {
    // Job steps ("42_3.batch") and anything else unexpected are not elements.
  }
}

std::string first_word(const std::string& s) {
  const std::string t = util::trim(s);
  return t.substr(0, t.find(' '));
}

std::string join_ids(const std::vector<std::int64_t>& ids) {
  std::string s;
  for (auto id : ids) {
    if (!s.empty()) s += ',';
    s += std::to_string(id);
  }
  return s;
}

}  // namespace

std::string render_array_script(const ArrayJob& job, const SlurmOptions& o) {
  if (job.size <= 0) throw std::invalid_argument("a job array needs at least one element");
  std::ostringstream s;
  s << "#!/bin/bash\n"
    << "# reglab job array: " << job.size << " trial(s). Element i runs the trial on line i+1 of\n"
    << "# " << job.manifest.string() << " and writes its results to its own SQLite shard in\n"
    << "# " << job.shard_dir.string() << "; `reglab collect` merges the shards.\n"
    << "# Resubmitting this file is safe: an element whose trial is complete exits at once.\n";
  s << directive("--job-name", job.name);
  std::string indices = "0-" + std::to_string(job.size - 1);
  if (o.max_parallel > 0) {
    indices += '%';
    indices += std::to_string(o.max_parallel);
  }
  s << directive("--array", indices);
  s << directive("--cpus-per-task", std::to_string(std::max(1, o.cpus_per_trial)));
  if (o.gpus_per_trial > 0) s << directive("--gres", "gpu:" + std::to_string(o.gpus_per_trial));
  s << directive("--output", (job.log_dir / "%A_%a.out").string());
  // Preempted elements go back to the queue and resume from their checkpoint.
  s << directive("--requeue");
  s << directive("--open-mode", "append");
  s << common_directives(o);
  s << "\nexec " << shell_quote(job.reglab.string()) << " _slurm-element --manifest "
    << shell_quote(job.manifest.string()) << " --index \"$SLURM_ARRAY_TASK_ID\" --shards "
    << shell_quote(job.shard_dir.string()) << " --results " << shell_quote(job.results_dir.string())
    << " --threads \"${SLURM_CPUS_PER_TASK:-1}\"\n";
  return s.str();
}

std::string render_collect_script(const std::string& name, const fs::path& reglab, const fs::path& db,
                                  const std::string& sweep, const fs::path& log_dir, const SlurmOptions& o) {
  std::ostringstream s;
  s << "#!/bin/bash\n"
    << "# reglab collect: merges the trial shards of sweep " << sweep << " into " << db.string() << ",\n"
    << "# and records elements that Slurm ended early (cancelled, out of memory, time limit) as failed.\n";
  s << directive("--job-name", name);
  s << directive("--cpus-per-task", "1");
  s << directive("--output", (log_dir / "collect_%j.out").string());
  s << common_directives(o);
  s << "\nexec " << shell_quote(reglab.string()) << " --db " << shell_quote(db.string()) << " collect "
    << shell_quote(sweep) << "\n";
  return s.str();
}

bool is_terminal(const std::string& state) {
  static const char* const kTerminal[] = {"COMPLETED", "FAILED",  "CANCELLED",  "TIMEOUT",     "OUT_OF_MEMORY",
                                          "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "REVOKED", "SPECIAL_EXIT"};
  for (const char* t : kTerminal)
    if (state == t) return true;
  return false;
}

std::string describe(const ElementId& id, const ElementState& s) {
  std::string text = "Slurm: " + s.state;
  if (!s.reason.empty() && s.reason != "None") text += " (" + s.reason + ")";
  if (!s.exit_code.empty() && s.exit_code != "0:0") text += ", exit " + s.exit_code;
  text += " (job " + std::to_string(id.first) + "_" + std::to_string(id.second) + ")";
  return text;
}

std::int64_t parse_sbatch_output(const std::string& out) {
  const std::string line = util::trim(out.substr(0, out.find('\n')));
  const std::string id = line.substr(0, line.find(';'));
  try {
    std::size_t used = 0;
    const long long v = std::stoll(id, &used);
    if (used == id.size() && v > 0) return v;
  } catch (const std::exception&) {
  }
  throw std::runtime_error("sbatch printed '" + line + "', not a job id");
}

SlurmView parse_squeue(const std::string& out) {
  SlurmView view;
  for (const auto& line : util::split(out, '\n')) {
    const auto f = util::split(line, '|');
    if (f.size() < 2) continue;
    add_elements(view, f[0], {first_word(f[1]), f.size() > 2 ? util::trim(f[2]) : "", ""});
  }
  return view;
}

SlurmView parse_sacct(const std::string& out) {
  SlurmView view;
  for (const auto& line : util::split(out, '\n')) {
    const auto f = util::split(line, '|');
    if (f.size() < 2) continue;
    add_elements(view, f[0],
                 {first_word(f[1]), f.size() > 2 ? util::trim(f[2]) : "", f.size() > 3 ? util::trim(f[3]) : ""});
  }
  return view;
}

SlurmClient::SlurmClient() {
  if (const char* dir = std::getenv("REGLAB_SLURM_BIN"); dir != nullptr && *dir != '\0') bin_dir_ = dir;
}

std::string SlurmClient::command(const std::string& name) const {
  return bin_dir_.empty() ? name : (bin_dir_ / name).string();
}

std::int64_t SlurmClient::sbatch(const fs::path& script, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {command("sbatch"), "--parsable"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(script.string());
  const auto r = util::run_process(argv);
  if (r.exit_code != 0)
    throw std::runtime_error("sbatch " + script.string() + " failed (exit " + std::to_string(r.exit_code) +
                             "): " + util::trim(r.err.empty() ? r.out : r.err));
  return parse_sbatch_output(r.out);
}

SlurmView SlurmClient::query(const std::vector<std::int64_t>& job_ids) {
  SlurmView view;
  if (job_ids.empty()) return view;
  // sacct knows every job the cluster ever ran, when accounting is on; it
  // fails (or prints nothing) without slurmdbd.
  const auto acct = util::run_process(
      {command("sacct"), "-n", "-P", "-X", "-j", join_ids(job_ids), "-o", "JobID,State,Reason,ExitCode"});
  if (acct.exit_code == 0) view = parse_sacct(acct.out);
  // squeue is the live truth for jobs it still remembers; it refuses a whole
  // list when one id is unknown, so ids are asked one by one after a failure.
  auto ask = [&](const std::string& ids) {
    const auto r = util::run_process({command("squeue"), "-h", "-r", "--states=all", "-j", ids, "-o", "%i|%T|%r"});
    if (r.exit_code != 0) return false;
    for (auto& [id, s] : parse_squeue(r.out)) {
      auto& slot = view[id];
      const std::string exit_code = slot.exit_code;
      slot = s;
      if (slot.exit_code.empty()) slot.exit_code = exit_code;
    }
    return true;
  };
  if (!ask(join_ids(job_ids)))
    for (auto id : job_ids) ask(std::to_string(id));
  return view;
}

void SlurmClient::cancel(const std::vector<std::int64_t>& job_ids) {
  if (job_ids.empty()) return;
  std::vector<std::string> argv = {command("scancel")};
  for (auto id : job_ids) argv.push_back(std::to_string(id));
  const auto r = util::run_process(argv);
  if (r.exit_code != 0)
    throw std::runtime_error("scancel failed (exit " + std::to_string(r.exit_code) + "): " + util::trim(r.err));
}

}  // namespace reglab::cluster

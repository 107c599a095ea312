// cluster/slurm.h — what reglab says to Slurm and how it reads the answers.
//
// A sweep goes to Slurm as one job array (one element per trial still to do,
// throttled with %K) plus a collect job that depends on it (afterany). The
// scripts are plain files under results/ so people can read and resubmit
// them. The Slurm commands are found on PATH, or in $REGLAB_SLURM_BIN when
// set. Parsing is separate from running so that it is tested on recorded
// output. No torch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace reglab::cluster {

// The resources of one array element, from `reglab run --executor slurm`.
struct SlurmOptions {
  std::string partition;               // --partition (empty: the cluster's default)
  std::string account;                 // --account
  std::string mem;                     // --mem per element, e.g. "4G" (empty: the cluster's default)
  std::string time;                    // --time per element, e.g. "2:00:00"
  int cpus_per_trial = 1;              // --cpus-per-task; also the trial's intra-op threads
  int gpus_per_trial = 0;              // --gres=gpu:G when > 0
  int max_parallel = 0;                // the %K throttle of the array (0: none)
  std::vector<std::string> sbatch_args;  // extra lines, verbatim: "--qos=long"
};

// Everything the array script needs besides the options.
struct ArrayJob {
  std::string name;                    // job name
  int size = 0;                        // elements 0..size-1
  std::filesystem::path reglab;        // the binary the elements run
  std::filesystem::path manifest;      // one trial per line, element i runs line i
  std::filesystem::path shard_dir;     // each element writes <shard_dir>/<key>.db
  std::filesystem::path results_dir;   // trial logs and checkpoints: <results_dir>/runs/...
  std::filesystem::path log_dir;       // Slurm's stdout/stderr of each element
};

// The sbatch script of a sweep's job array.
std::string render_array_script(const ArrayJob& job, const SlurmOptions& options);
// The script of the collect job: merges the shards into the main store.
std::string render_collect_script(const std::string& name, const std::filesystem::path& reglab,
                                  const std::filesystem::path& db, const std::string& sweep,
                                  const std::filesystem::path& log_dir, const SlurmOptions& options);

// Slurm's view of one array element.
struct ElementState {
  std::string state;   // PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, ...
  std::string reason;  // Slurm's reason, "" when it gives none
  std::string exit_code;  // "0:0" (exit:signal), "" when unknown
};
using ElementId = std::pair<std::int64_t, int>;  // (array job id, index)
using SlurmView = std::map<ElementId, ElementState>;

// True for states after which Slurm will not run the element again by itself.
bool is_terminal(const std::string& state);
// A one-line account of a finished element that did not complete, for the
// run's error: "Slurm: CANCELLED (job 42_3)", with the reason when known.
std::string describe(const ElementId& id, const ElementState& s);

// `sbatch --parsable` prints "jobid" or "jobid;cluster".
std::int64_t parse_sbatch_output(const std::string& out);
// `squeue -h -r --states=all -o %i|%T|%r`: "42_3|RUNNING|None". Pending
// elements Slurm has not split yet appear as one line "42_[4-9%2]|PENDING|..."
// and are expanded here. Lines of plain (non-array) jobs get index -1.
SlurmView parse_squeue(const std::string& out);
// `sacct -n -P -X -o JobID,State,Reason,ExitCode`: "42_3|CANCELLED by 0|None|0:15".
SlurmView parse_sacct(const std::string& out);

// Runs the Slurm commands. Errors name the command and quote its stderr.
class SlurmClient {
 public:
  SlurmClient();  // commands from $REGLAB_SLURM_BIN or PATH
  explicit SlurmClient(std::filesystem::path bin_dir) : bin_dir_(std::move(bin_dir)) {}

  // Submits a script; extra arguments come before it. Returns the job id.
  std::int64_t sbatch(const std::filesystem::path& script, const std::vector<std::string>& args = {});
  // The state of every element of these jobs: sacct when the cluster keeps
  // accounting, else squeue (which remembers finished jobs for MinJobAge).
  // Elements neither knows are absent.
  SlurmView query(const std::vector<std::int64_t>& job_ids);
  void cancel(const std::vector<std::int64_t>& job_ids);

 private:
  std::string command(const std::string& name) const;
  std::filesystem::path bin_dir_;
};

}  // namespace reglab::cluster

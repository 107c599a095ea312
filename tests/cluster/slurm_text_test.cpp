// The Slurm scripts reglab writes and its reading of Slurm's output, on
// output recorded from Slurm 22.05 (squeue -r, sacct -P, sbatch --parsable).
#include <gtest/gtest.h>

#include "cluster/slurm.h"

namespace reglab::cluster {
namespace {

ArrayJob job_of(int size) {
  ArrayJob j;
  j.name = "reglab-demo";
  j.size = size;
  j.reglab = "/opt/reg lab/reglab";
  j.manifest = "/r/slurm/demo/s1/manifest.jsonl";
  j.shard_dir = "/r/shards/demo";
  j.results_dir = "/r";
  j.log_dir = "/r/slurm/demo/s1/logs";
  return j;
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST(SlurmScript, ArrayHasOneElementPerTrialThrottledAndTheResources) {
  SlurmOptions o;
  o.partition = "cpu";
  o.account = "lab";
  o.mem = "4G";
  o.time = "1:00:00";
  o.cpus_per_trial = 3;
  o.gpus_per_trial = 1;
  o.max_parallel = 2;
  o.sbatch_args = {"--qos=long"};
  const std::string s = render_array_script(job_of(5), o);
  EXPECT_EQ(s.rfind("#!/bin/bash\n", 0), 0u);
  for (const char* line : {"#SBATCH --array=0-4%2", "#SBATCH --cpus-per-task=3", "#SBATCH --gres=gpu:1",
                           "#SBATCH --partition=cpu", "#SBATCH --account=lab", "#SBATCH --mem=4G",
                           "#SBATCH --time=1:00:00", "#SBATCH --qos=long", "#SBATCH --requeue",
                           "#SBATCH --job-name=reglab-demo", "#SBATCH --output=/r/slurm/demo/s1/logs/%A_%a.out"})
    EXPECT_TRUE(has_line(s, line)) << line << "\n" << s;
  // The binary's path has a blank: it is quoted for bash.
  EXPECT_NE(s.find("exec '/opt/reg lab/reglab' _slurm-element --manifest '/r/slurm/demo/s1/manifest.jsonl' "
                   "--index \"$SLURM_ARRAY_TASK_ID\" --shards '/r/shards/demo' --results '/r' "
                   "--threads \"${SLURM_CPUS_PER_TASK:-1}\""),
            std::string::npos)
      << s;
}

TEST(SlurmScript, DefaultsOmitWhatTheClusterDecides) {
  const std::string s = render_array_script(job_of(1), SlurmOptions{});
  EXPECT_TRUE(has_line(s, "#SBATCH --array=0-0")) << s;
  EXPECT_TRUE(has_line(s, "#SBATCH --cpus-per-task=1")) << s;
  for (const char* absent : {"--partition", "--account", "--mem", "--time", "--gres", "--array=0-0%"})
    EXPECT_EQ(s.find(absent), std::string::npos) << absent;
}

TEST(SlurmScript, BlanksInADirectiveAreRefusedNotTruncated) {
  ArrayJob j = job_of(2);
  j.log_dir = "/r/my logs";
  EXPECT_THROW(render_array_script(j, SlurmOptions{}), std::invalid_argument);
  SlurmOptions o;
  o.sbatch_args = {"--comment=two words"};
  EXPECT_THROW(render_array_script(job_of(2), o), std::invalid_argument);
  EXPECT_THROW(render_array_script(job_of(0), SlurmOptions{}), std::invalid_argument);
}

TEST(SlurmScript, CollectJobMergesTheSweepIntoTheDatabase) {
  const std::string s = render_collect_script("reglab-collect-demo", "/bin/reglab", "/r/reglab.db", "demo",
                                              "/r/logs", SlurmOptions{});
  EXPECT_NE(s.find("exec '/bin/reglab' --db '/r/reglab.db' collect 'demo'"), std::string::npos) << s;
  EXPECT_TRUE(has_line(s, "#SBATCH --cpus-per-task=1")) << s;
}

TEST(SlurmParse, SbatchParsableOutput) {
  EXPECT_EQ(parse_sbatch_output("4242\n"), 4242);
  EXPECT_EQ(parse_sbatch_output("17;cluster-a\n"), 17);
  EXPECT_THROW(parse_sbatch_output("Submitted batch job 12\n"), std::runtime_error);
  EXPECT_THROW(parse_sbatch_output(""), std::runtime_error);
}

TEST(SlurmParse, SqueueExpandsPendingRangesAndKeepsReasons) {
  const SlurmView v = parse_squeue(
      "42_0|COMPLETED|None\n"
      "42_1|RUNNING|None\n"
      "42_[2-3,5%2]|PENDING|JobArrayTaskLimit\n"
      "43|PENDING|Dependency\n"
      "\n");
  ASSERT_EQ(v.size(), 6u);
  EXPECT_EQ(v.at({42, 0}).state, "COMPLETED");
  EXPECT_EQ(v.at({42, 1}).state, "RUNNING");
  for (int i : {2, 3, 5}) {
    EXPECT_EQ(v.at({42, i}).state, "PENDING");
    EXPECT_EQ(v.at({42, i}).reason, "JobArrayTaskLimit");
  }
  EXPECT_EQ(v.count({42, 4}), 0u);
  EXPECT_EQ(v.at({43, -1}).reason, "Dependency");
}

TEST(SlurmParse, SacctTakesTheStateWordAndExitCodeAndSkipsSteps) {
  const SlurmView v = parse_sacct(
      "50_0|COMPLETED|None|0:0\n"
      "50_1|CANCELLED by 0|None|0:15\n"
      "50_1.batch|CANCELLED|None|0:15\n"
      "50_2|OUT_OF_MEMORY|None|0:125\n"
      "50_3|TIMEOUT|TimeLimit|0:0\n");
  ASSERT_EQ(v.size(), 4u);
  EXPECT_EQ(v.at({50, 1}).state, "CANCELLED");
  EXPECT_EQ(v.at({50, 1}).exit_code, "0:15");
  EXPECT_EQ(v.at({50, 2}).state, "OUT_OF_MEMORY");
  EXPECT_EQ(v.at({50, 3}).reason, "TimeLimit");
}

TEST(SlurmParse, TerminalStatesAndTheirDescription) {
  for (const char* s : {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL"})
    EXPECT_TRUE(is_terminal(s)) << s;
  for (const char* s : {"PENDING", "RUNNING", "REQUEUED", "COMPLETING", "SUSPENDED", "PREEMPTED", ""})
    EXPECT_FALSE(is_terminal(s)) << s;
  EXPECT_EQ(describe({7, 3}, {"OUT_OF_MEMORY", "None", "0:125"}), "Slurm: OUT_OF_MEMORY, exit 0:125 (job 7_3)");
  EXPECT_EQ(describe({7, 0}, {"TIMEOUT", "TimeLimit", "0:0"}), "Slurm: TIMEOUT (TimeLimit) (job 7_0)");
}

}  // namespace
}  // namespace reglab::cluster

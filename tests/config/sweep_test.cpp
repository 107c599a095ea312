// Sweep files: expansion (variants x grid x random x seeds), --set, keys, labels, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "fake_methods.h"
#include "sweep/spec.h"
#include "sweep/sweep.h"
#include "util/util.h"

namespace reglab::sweep {
namespace {

using config::ConfigError;
using test::data_file;
using test::data_name;

Sweep load(const std::string& name, const std::vector<std::string>& sets = {}) {
  return load_sweep(data_file(name), sets, test::fake_lookup, test::fake_names);
}

// The issues of the ConfigError that loading throws, as strings.
std::vector<std::string> issues_of(const std::string& name, const std::vector<std::string>& sets = {}) {
  try {
    load(name, sets);
  } catch (const ConfigError& err) {
    std::vector<std::string> out;
    for (const config::Issue& issue : err.issues()) out.push_back(issue.str());
    return out;
  }
  return {"<no ConfigError>"};
}

const Json& at(const Trial& t, const std::string& key) {
  const Json* v = config::get_path(t.config, key);
  if (!v) throw std::runtime_error("trial has no " + key);
  return *v;
}

TEST(TrialKey, IsXxh3Of128BitsOfTheCanonicalDump) {
  Json config = {{"d", {1, 2.5}}, {"c", "x"}, {"b", 0.1}, {"a", 1}};
  EXPECT_EQ(config.dump(), R"({"a":1,"b":0.1,"c":"x","d":[1,2.5]})");
  // Debian's python3-xxhash 3.0.0, another implementation of XXH3:
  //   s = json.dumps({"d":[1,2.5],"c":"x","b":0.1,"a":1}, sort_keys=True, separators=(",",":"))
  //   xxhash.xxh3_128_hexdigest(s.encode())
  EXPECT_EQ(trial_key(config), "59957f8c8470befbac040c38c006bcd7");
}

TEST(Sweep, GridTimesVariantsTimesSeedsInOrder) {
  Sweep sweep = load("grid.toml");
  EXPECT_EQ(sweep.name, "grid-demo");
  EXPECT_EQ(sweep.description, "two methods, two learning rates, two momenta, three seeds");
  EXPECT_EQ(sweep.file, data_file("grid.toml"));
  EXPECT_EQ(sweep.toml_text, util::read_file(data_file("grid.toml")));
  ASSERT_EQ(sweep.trials.size(), 24u);  // 2 variants x 2 lr x 2 momentum x 3 seeds

  // variant outermost, then grid keys in sorted order (optim.lr before optim.momentum), seed innermost.
  const double lrs[] = {0.1, 0.01};
  const double moms[] = {0.0, 0.9};
  std::size_t i = 0;
  for (const std::string method : {"ce", "label_smoothing"}) {
    for (double lr : lrs) {
      for (double mom : moms) {
        for (std::int64_t seed = 0; seed < 3; ++seed, ++i) {
          const Trial& t = sweep.trials[i];
          EXPECT_EQ(at(t, "method.name"), method) << i;
          EXPECT_EQ(at(t, "optim.lr"), lr) << i;
          EXPECT_EQ(at(t, "optim.momentum"), mom) << i;
          EXPECT_EQ(t.seed, seed) << i;
          EXPECT_EQ(at(t, "seed"), seed) << i;
          EXPECT_EQ(at(t, "task.epochs"), 2) << i;  // from the base
          EXPECT_EQ(t.key, trial_key(t.config)) << i;
        }
      }
    }
  }
  EXPECT_EQ(at(sweep.trials[12], "method.epsilon"), 0.3);
  EXPECT_FALSE(sweep.trials[0].config["method"].contains("epsilon"));
  std::set<std::string> keys;
  for (const Trial& t : sweep.trials) {
    EXPECT_EQ(t.key.size(), 32u);
    keys.insert(t.key);
  }
  EXPECT_EQ(keys.size(), 24u);
}

TEST(Sweep, LabelsNameOnlyWhatVaries) {
  Sweep sweep = load("grid.toml");
  EXPECT_EQ(sweep.trials[0].label, "method.name=ce optim.lr=0.1 optim.momentum=0.0 seed=0");
  EXPECT_EQ(sweep.trials[5].label, "method.name=ce optim.lr=0.1 optim.momentum=0.9 seed=2");
  EXPECT_EQ(sweep.trials[12].label,
            "method.name=label_smoothing method.epsilon=0.3 optim.lr=0.1 optim.momentum=0.0 seed=0");
  Sweep single = load("base_seed.toml");
  ASSERT_EQ(single.trials.size(), 1u);
  EXPECT_EQ(single.trials[0].label, "seed=11");
}

TEST(Sweep, DefaultsWithoutASweepTable) {
  Sweep sweep = load("base_seed.toml");
  EXPECT_EQ(sweep.name, "base_seed");  // the file's stem
  EXPECT_EQ(sweep.description, "");
  ASSERT_EQ(sweep.trials.size(), 1u);
  EXPECT_EQ(sweep.trials[0].seed, 11);  // no [sweep] seeds: the file's own seed is kept
  EXPECT_EQ(at(sweep.trials[0], "optim.betas"), Json::array({0.9, 0.999}));
  EXPECT_EQ(at(sweep.trials[0], "data.dataset"), "fashion-mnist");
}

TEST(Sweep, KeysAreStableAndChangeWithEveryValue) {
  Sweep a = load("grid.toml");
  Sweep b = load("grid.toml");
  ASSERT_EQ(a.trials.size(), b.trials.size());
  for (std::size_t i = 0; i < a.trials.size(); ++i) EXPECT_EQ(a.trials[i].key, b.trials[i].key);

  const Json& base = a.trials[12].config;
  const std::string key = trial_key(base);
  for (const auto& [path, value] : config::flatten(base)) {
    Json changed = base;
    Json other;
    if (value.is_boolean()) other = !value.get<bool>();
    else if (value.is_number_integer()) other = value.get<std::int64_t>() + 1;
    else if (value.is_number_float()) other = value.get<double>() * 2 + 1;
    else if (value.is_string()) other = value.get<std::string>() + "x";
    else if (value.is_array()) { other = value; other.push_back(1); }
    config::set_path(changed, path, other);
    EXPECT_NE(trial_key(changed), key) << path;
  }
}

TEST(Sweep, ErrorsInTheBaseAreReportedOnceWithPositions) {
  const std::string f = data_name("errors.toml");
  const std::vector<std::string> expected = {
      f + ":18:8: key 'sweep.seed': unknown key in [sweep] (it takes: name, description, seeds, grid, random, "
          "variants) (did you mean 'sweep.seeds'?)",
      f + ":15:11: key 'method.epsilom': unknown key; method 'label_smoothing' takes: epsilon (did you mean "
          "'method.epsilon'?)",
      f + ":11:16: key 'model.hidden': element 1: expected a value >= 1, got 0",
      f + ":7:7: key 'optim.lrr': unknown key (did you mean 'optim.lr'?)",
      f + ":8:12: key 'optim.momentum': expected a float, got string \"fast\"",
      f + ":4:10: key 'task.device': expected one of \"cpu\", \"cuda\", got \"gpu\" (did you mean 'cpu'?)",
      f + ":3:10: key 'task.epochs': expected a value in [1, 100000], got 0",
  };
  EXPECT_EQ(issues_of("errors.toml"), expected);
  try {
    load("errors.toml");
  } catch (const ConfigError& err) {
    EXPECT_EQ(std::string(err.what()), util::join(expected, "\n"));
  }
}

TEST(Sweep, GridErrorsPointAtTheGridElementAndAreDeduplicated) {
  const std::string f = data_name("bad_grid.toml");
  const std::vector<std::string> expected = {
      f + ":6:55: key 'optim.lr': expected a float, got string \"fast\"",
      f + ":6:35: key 'optim.momentum': expected a value in [0.0, 1.0], got 1.5",
  };
  EXPECT_EQ(issues_of("bad_grid.toml"), expected);  // 4 trials, each problem once
}

TEST(Sweep, VariantErrorsPointIntoTheVariant) {
  EXPECT_EQ(issues_of("variants.toml"),
            std::vector<std::string>{data_name("variants.toml") +
                                     ":14:21: key 'model.hidden': element 1: expected a value >= 1, got 0"});
}

TEST(Sweep, SweepTableErrors) {
  const std::string f = data_name("bad_random.toml");
  const std::vector<std::string> expected = {
      f + ":12:57: key 'sweep.random.optim.eps.hihg': unknown field of a log_uniform distribution (it takes: dist, "
          "low, high) (did you mean 'sweep.random.optim.eps.high'?)",
      f + ":12:15: key 'sweep.random.optim.eps': a log_uniform distribution needs 'high'",
      f + ":10:23: key 'sweep.random.optim.lr.dist': unknown distribution \"log-uniform\" (known: uniform, "
          "log_uniform, int, choice) (did you mean 'log_uniform'?)",
      f + ":11:20: key 'sweep.random.optim.momentum': low (0.9) is greater than high (0.5)",
      f + ":8:1: key 'sweep.random': missing 'count': how many random samples to draw",
      f + ":5:13: key 'sweep.seeds.1': expected a non-negative int, got int -1",
      f + ":6:12: key 'sweep.variants': expected a non-empty list of tables ([[sweep.variants]]), got list []",
  };
  EXPECT_EQ(issues_of("bad_random.toml"), expected);
}

TEST(Sweep, MethodProblemsFromFiles) {
  EXPECT_EQ(issues_of("unknown_method.toml"),
            std::vector<std::string>{data_name("unknown_method.toml") +
                                     ":2:8: key 'method.name': unknown method \"lable_smoothing\" (known methods: ce, "
                                     "label_smoothing, tent) (did you mean 'label_smoothing'?)"});
  EXPECT_EQ(issues_of("paradigm.toml"),
            std::vector<std::string>{data_name("paradigm.toml") +
                                     ":2:8: key 'method.name': method 'tent' supports tta, not the paradigm "
                                     "'classify' asked by task.paradigm"});
  EXPECT_EQ(issues_of("missing_method.toml"),
            std::vector<std::string>{data_name("missing_method.toml") +
                                     ": key 'method.name': missing: every trial needs a method (known methods: ce, "
                                     "label_smoothing, tent)"});
}

TEST(Sweep, ExtendsWorksForSweeps) {
  Sweep sweep = load("sub/grandchild.toml");
  ASSERT_EQ(sweep.trials.size(), 1u);
  EXPECT_EQ(sweep.name, "grandchild");
  EXPECT_EQ(at(sweep.trials[0], "task.epochs"), 9);
  EXPECT_EQ(at(sweep.trials[0], "optim.lr"), 0.01);
  EXPECT_EQ(at(sweep.trials[0], "optim.momentum"), 0.5);
  EXPECT_EQ(at(sweep.trials[0], "method.name"), "ce");
}

TEST(Set, ValuesAreTypedLikeToml) {
  Sweep sweep = load("base_seed.toml", {"task.epochs=4", "data.normalize=false", "optim.schedule=cosine",
                                        "model.hidden=[64, 32]", "optim.lr=1", "method.name=\"label_smoothing\"",
                                        "method.epsilon=0.05"});
  ASSERT_EQ(sweep.trials.size(), 1u);
  const Trial& t = sweep.trials[0];
  EXPECT_EQ(at(t, "task.epochs"), 4);
  EXPECT_EQ(at(t, "data.normalize"), false);
  EXPECT_EQ(at(t, "optim.schedule"), "cosine");
  EXPECT_EQ(at(t, "model.hidden"), Json::array({64, 32}));
  EXPECT_TRUE(at(t, "optim.lr").is_number_float());
  EXPECT_EQ(at(t, "optim.lr"), 1.0);
  EXPECT_EQ(at(t, "method.name"), "label_smoothing");
  EXPECT_EQ(at(t, "method.epsilon"), 0.05);
}

TEST(Set, WinsOverVariantsAndGrid) {
  Sweep plain = load("variants.toml", {"model.hidden=[64, 32]"});
  ASSERT_EQ(plain.trials.size(), 2u);
  EXPECT_EQ(at(plain.trials[0], "optim.lr"), 0.3);  // the variant's
  EXPECT_EQ(at(plain.trials[1], "optim.lr"), 0.2);  // the base's
  EXPECT_EQ(plain.trials[0].seed, 3);

  Sweep forced = load("variants.toml", {"model.hidden=[64, 32]", "optim.lr=0.7"});
  ASSERT_EQ(forced.trials.size(), 2u);
  EXPECT_EQ(at(forced.trials[0], "optim.lr"), 0.7);
  EXPECT_EQ(at(forced.trials[1], "optim.lr"), 0.7);
  EXPECT_EQ(at(forced.trials[1], "method.epsilon"), 0.25);

  // Fixing a grid key collapses the grid points that became identical.
  Sweep grid = load("grid.toml", {"optim.lr=0.5"});
  ASSERT_EQ(grid.trials.size(), 12u);
  for (const Trial& t : grid.trials) EXPECT_EQ(at(t, "optim.lr"), 0.5);
  EXPECT_EQ(grid.trials[0].label, "method.name=ce optim.momentum=0.0 seed=0");
}

TEST(Set, ChangesTheSweepItself) {
  Sweep sweep = load("grid.toml", {"sweep.seeds=[5]", "sweep.name=renamed", "sweep.grid.optim.momentum=[0.5]"});
  EXPECT_EQ(sweep.name, "renamed");
  ASSERT_EQ(sweep.trials.size(), 4u);  // 2 variants x 2 lr x 1 momentum x 1 seed
  for (const Trial& t : sweep.trials) {
    EXPECT_EQ(t.seed, 5);
    EXPECT_EQ(at(t, "optim.momentum"), 0.5);
  }
  // grid.toml writes "optim.lr" quoted; --set replaces it all the same.
  Sweep quoted = load("grid.toml", {"sweep.grid.optim.lr=[0.5]"});
  ASSERT_EQ(quoted.trials.size(), 12u);
  for (const Trial& t : quoted.trials) EXPECT_EQ(at(t, "optim.lr"), 0.5);
  // Repeated seeds give identical trials, kept once.
  EXPECT_EQ(load("base_seed.toml", {"sweep.seeds=[0, 0, 1]"}).trials.size(), 2u);
}

TEST(Set, ProblemsAreReportedAtTheCommandLine) {
  EXPECT_EQ(issues_of("grid.toml", {"optim.lrr=0.1"}),
            std::vector<std::string>{"<command line>: key 'optim.lrr': unknown key (did you mean 'optim.lr'?)"});
  EXPECT_EQ(issues_of("grid.toml", {"optim.lr=fast"}),
            std::vector<std::string>{"<command line>: key 'optim.lr': expected a float, got string \"fast\""});
  EXPECT_EQ(issues_of("grid.toml", {"sweep.seeds=[-1]"}),
            std::vector<std::string>{"<command line>: key 'sweep.seeds.0': expected a non-negative int, got int -1"});
}

TEST(Set, MalformedOverridesAreNamed) {
  EXPECT_EQ(issues_of("grid.toml", {"optim.lr"}),
            std::vector<std::string>{"<command line>: malformed --set 'optim.lr': expected dotted.key=value"});
  for (const std::string bad : {"=3", "a..b=1", "optim lr=1", "x=[1,", "x=\"open", "x="}) {
    std::vector<std::string> issues = issues_of("grid.toml", {bad});
    ASSERT_EQ(issues.size(), 1u) << bad;
    EXPECT_EQ(issues[0].rfind("<command line>: malformed --set '" + bad + "': ", 0), 0u) << issues[0];
  }
  // Every malformed override is listed, not just the first.
  EXPECT_EQ(issues_of("grid.toml", {"a", "b"}).size(), 2u);
}

TEST(Random, SamplesAreDeterministicAndMatchTheSpec) {
  Sweep sweep = load("random.toml");
  ASSERT_EQ(sweep.trials.size(), 10u);  // 5 samples x 2 seeds, seed innermost
  // Worked out independently (Python) from splitmix64 seeded with 42, keys in
  // sorted order, 53-bit uniforms, %.6g rounding, unbiased modulo for ints.
  struct Expected {
    double lr;
    double momentum;
    const char* name;
    int epochs;
  };
  const Expected expected[] = {{0.0167762, 0.578356, "sgd", 1},
                               {0.000130044, 0.925432, "adam", 3},
                               {0.00104663, 0.803056, "adamw", 2},
                               {0.00346887, 0.754807, "adamw", 3},
                               {0.000204514, 0.742794, "sgd", 1}};
  for (std::size_t s = 0; s < 5; ++s) {
    for (std::size_t k = 0; k < 2; ++k) {
      const Trial& t = sweep.trials[2 * s + k];
      EXPECT_EQ(t.seed, static_cast<std::int64_t>(k));
      EXPECT_EQ(at(t, "optim.lr"), expected[s].lr) << s;
      EXPECT_EQ(at(t, "optim.momentum"), expected[s].momentum) << s;
      EXPECT_EQ(at(t, "optim.name"), expected[s].name) << s;
      EXPECT_EQ(at(t, "task.epochs"), expected[s].epochs) << s;
    }
  }
  EXPECT_EQ(sweep.trials[0].label, "optim.lr=0.0167762 optim.momentum=0.578356 optim.name=sgd task.epochs=1 seed=0");

  Sweep again = load("random.toml");
  for (std::size_t i = 0; i < sweep.trials.size(); ++i) EXPECT_EQ(again.trials[i].key, sweep.trials[i].key);

  Sweep reseeded = load("random.toml", {"sweep.random.seed=43"});
  ASSERT_EQ(reseeded.trials.size(), 10u);
  EXPECT_NE(at(reseeded.trials[0], "optim.lr"), at(sweep.trials[0], "optim.lr"));
}

TEST(Random, ManySamplesStayInRangeAndCoverIt) {
  Sweep sweep = load("random.toml", {"sweep.random.count=300", "sweep.seeds=[0]"});
  ASSERT_EQ(sweep.trials.size(), 300u);
  std::set<std::int64_t> epochs;
  std::set<std::string> names;
  int low_decade_half = 0;
  for (const Trial& t : sweep.trials) {
    const double lr = at(t, "optim.lr").get<double>();
    const double mom = at(t, "optim.momentum").get<double>();
    EXPECT_GE(lr, 1e-4);
    EXPECT_LE(lr, 1e-1);
    EXPECT_GE(mom, 0.5);
    EXPECT_LE(mom, 0.99);
    epochs.insert(at(t, "task.epochs").get<std::int64_t>());
    names.insert(at(t, "optim.name").get<std::string>());
    if (std::log10(lr) < -2.5) ++low_decade_half;  // log-uniform: half the mass below 10^-2.5
  }
  EXPECT_EQ(epochs, (std::set<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(names, (std::set<std::string>{"sgd", "adam", "adamw"}));
  EXPECT_GT(low_decade_half, 110);  // Binomial(300, 0.5): mean 150, sd 8.7
  EXPECT_LT(low_decade_half, 190);
}

TEST(Rng, IsSplitMix64) {
  // Reference outputs of splitmix64 for seed 0 (computed independently in Python).
  Rng rng(0);
  EXPECT_EQ(rng.next(), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(rng.next(), 0x6e789e6aa1b965f4ULL);
  EXPECT_EQ(rng.next(), 0x06c45d188009454fULL);
}

TEST(Rng, BoundedDrawsAreUniformAndInRange) {
  Rng rng(7);
  int counts[6] = {0, 0, 0, 0, 0, 0};
  for (int i = 0; i < 60000; ++i) ++counts[rng.below(6)];
  for (int c : counts) {
    EXPECT_GT(c, 9500);  // mean 10000, sd ~91
    EXPECT_LT(c, 10500);
  }
  for (int i = 0; i < 1000; ++i) {
    const std::int64_t v = rng.between(-3, 3);
    EXPECT_GE(v, -3);
    EXPECT_LE(v, 3);
    const double u = rng.uniform01();
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
  }
  EXPECT_EQ(rng.between(5, 5), 5);
  // The full int64 range must not overflow.
  (void)rng.between(std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max());
}

TEST(Rng, DrawRoundsContinuousValuesToSixDigits) {
  Rng rng(3);
  Distribution uniform;
  uniform.kind = Distribution::Kind::kUniform;
  uniform.low = 0;
  uniform.high = 1;
  for (int i = 0; i < 100; ++i) {
    const double v = draw(uniform, rng).get<double>();
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    EXPECT_EQ(std::strtod(buf, nullptr), v);
  }
}

}  // namespace
}  // namespace reglab::sweep

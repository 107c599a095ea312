// The core schema, value checks, "did you mean" and validate_trial.
#include <gtest/gtest.h>

#include <set>

#include "config/schema.h"
#include "fake_methods.h"

namespace reglab::config {
namespace {

using test::fake_lookup;
using test::fake_names;

const ParamSpec& core_spec(const std::string& name) {
  for (const ParamSpec& spec : core_schema()) {
    if (spec.name == name) return spec;
  }
  throw std::runtime_error("no core key " + name);
}

// Validates TOML text (file name "t.toml"); returns the issues' strings.
std::vector<std::string> validate_text(const std::string& text, Json* resolved = nullptr) {
  Document doc = parse_toml_string(text, "t.toml");
  std::vector<Issue> issues;
  validate_trial(doc.tree, doc.locations, fake_lookup, fake_names, issues);
  if (resolved) *resolved = doc.tree;
  std::vector<std::string> out;
  for (const Issue& issue : issues) out.push_back(issue.str());
  return out;
}

TEST(CoreSchema, HasExactlyTheAgreedKeys) {
  const std::set<std::string> expected = {
      "seed", "init.from", "init.stage",
      "task.paradigm", "task.epochs", "task.batch_size", "task.eval_batch_size", "task.device",
      "task.checkpoint_every", "task.threads", "task.bags_per_step", "task.schedule_per_step",
      "data.dataset", "data.root", "data.limit", "data.test_limit", "data.val_fraction", "data.normalize",
      "data.noise.kind", "data.noise.rate", "data.noise.class_map", "data.synthetic.samples",
      "data.synthetic.test_samples", "data.synthetic.features", "data.synthetic.classes",
      "data.synthetic.separation", "data.classes",
      "data.bags.targets", "data.bags.size_mean", "data.bags.size_std", "data.bags.min_size", "data.bags.train",
      "data.bags.test",
      "model.arch", "model.hidden", "model.channels", "model.dropout",
      "model.mil.attention", "model.mil.heads", "model.mil.attention_hidden",
      "tta.protocol", "tta.corruptions", "tta.severity", "tta.batch_size", "tta.held_out", "tta.unknown_ratio",
      "tta.corruption_seed",
      "policy.d_model", "policy.depth", "policy.heads", "policy.context", "policy.mlp_ratio",
      "policy.tie_embeddings",
      "arith.ops", "arith.min_digits", "arith.max_digits", "arith.ood_ops", "arith.ood_min_digits",
      "arith.ood_max_digits", "arith.eval_prompts",
      "sft.examples",
      "rlvr.steps", "rlvr.prompts", "rlvr.pool", "rlvr.votes", "rlvr.trained", "rlvr.temperature", "rlvr.top_p",
      "rlvr.max_new_tokens", "rlvr.ppo_epochs", "rlvr.minibatch", "rlvr.grad_clip", "rlvr.norm_adv_by_std",
      "rlvr.embedding", "rlvr.eval_every", "rlvr.eval_samples",
      "optim.name", "optim.lr", "optim.momentum", "optim.nesterov", "optim.weight_decay", "optim.betas",
      "optim.eps", "optim.schedule", "optim.milestones", "optim.gamma", "optim.t0", "optim.t_mult",
      "optim.eta_min",
      "method.name"};
  std::set<std::string> actual;
  for (const ParamSpec& spec : core_schema()) {
    EXPECT_TRUE(actual.insert(spec.name).second) << "duplicate " << spec.name;
    EXPECT_GT(std::string(spec.doc).size(), 10u) << spec.name << " needs a one-line doc";
  }
  EXPECT_EQ(actual, expected);
}

TEST(CoreSchema, EveryDefaultFitsItsOwnSpecAndOnlyMethodNameIsRequired) {
  for (const ParamSpec& spec : core_schema()) {
    Json value;
    ASSERT_NO_THROW(value = parse_default(spec)) << spec.name;
    // method.name is required; data.classes, unset, means every class.
    if (std::string(spec.name) == "method.name" || std::string(spec.name) == "data.classes") {
      EXPECT_TRUE(value.is_null());
    } else {
      EXPECT_FALSE(value.is_null()) << spec.name;
      EXPECT_EQ(check_value(spec, value), "") << spec.name;
    }
  }
}

TEST(CoreSchema, SomeDefaultsAndRanges) {
  EXPECT_EQ(parse_default(core_spec("task.epochs")), 10);
  EXPECT_EQ(parse_default(core_spec("optim.betas")), Json::array({0.9, 0.999}));
  EXPECT_EQ(parse_default(core_spec("optim.eps")), 1e-8);
  EXPECT_EQ(parse_default(core_spec("data.root")), "/usr/share/datasets/fashion-mnist");
  EXPECT_EQ(parse_default(core_spec("data.noise.class_map")), Json::array());
  EXPECT_EQ(parse_default(core_spec("data.normalize")), true);
  // A float default written as an int literal is still a float.
  EXPECT_TRUE(parse_default(core_spec("data.synthetic.separation")).is_number_float());
  EXPECT_EQ(check_value(core_spec("task.threads"), 1024), "");
  EXPECT_EQ(check_value(core_spec("task.threads"), 1025), "expected a value in [0, 1024], got 1025");
  EXPECT_EQ(check_value(core_spec("data.val_fraction"), 0.95), "expected a value in [0.0, 0.9], got 0.95");
  EXPECT_EQ(check_value(core_spec("seed"), -1), "expected a value >= 0, got -1");
}

TEST(CheckValue, TypesAndCoercions) {
  const ParamSpec& lr = core_spec("optim.lr");
  EXPECT_EQ(check_value(lr, 1), "");  // an int is a fine float
  EXPECT_EQ(check_value(lr, "fast"), "expected a float, got string \"fast\"");
  EXPECT_EQ(check_value(lr, true), "expected a float, got bool true");
  EXPECT_EQ(check_value(lr, -0.5), "expected a value >= 0.0, got -0.5");
  EXPECT_EQ(check_value(lr, std::numeric_limits<double>::infinity()).rfind("expected a finite float", 0), 0u);

  const ParamSpec& epochs = core_spec("task.epochs");
  EXPECT_EQ(check_value(epochs, 3.0), "");  // integral float accepted
  EXPECT_EQ(check_value(epochs, 2.5), "expected an int, got float 2.5");
  EXPECT_EQ(check_value(epochs, "3"), "expected an int, got string \"3\"");

  EXPECT_EQ(check_value(core_spec("data.normalize"), 1), "expected a bool, got int 1");
  EXPECT_EQ(check_value(core_spec("optim.schedule"), "cosine"), "");
  EXPECT_EQ(check_value(core_spec("optim.schedule"), "linear"),
            "expected one of \"constant\", \"step\", \"cosine\", \"cosine_restarts\", got \"linear\"");
  EXPECT_EQ(check_value(core_spec("data.root"), "anything/at/all"), "");

  const ParamSpec& hidden = core_spec("model.hidden");
  EXPECT_EQ(check_value(hidden, Json::array({128, 64})), "");
  EXPECT_EQ(check_value(hidden, Json::array()), "");
  EXPECT_EQ(check_value(hidden, 128), "expected a list of ints, got int 128");
  EXPECT_EQ(check_value(hidden, Json::array({128, 0})), "element 1: expected a value >= 1, got 0");
  EXPECT_EQ(check_value(hidden, Json::array({128, 1.5})), "element 1: expected an int, got float 1.5");
  EXPECT_EQ(check_value(core_spec("optim.betas"), Json::array({1, 0.5})),
            "element 0: expected a value in [0.0, 0.999999], got 1.0");
}

TEST(Nearest, SuggestsOnlyCloseKeys) {
  const std::vector<std::string> keys = {"optim.lr", "optim.momentum", "task.epochs", "method.epsilon"};
  EXPECT_EQ(nearest("optim.lrr", keys), "optim.lr");
  EXPECT_EQ(nearest("optim.momentun", keys), "optim.momentum");
  EXPECT_EQ(nearest("method.epsilom", keys), "method.epsilon");
  EXPECT_EQ(nearest("completely.different", keys), "");
  EXPECT_EQ(nearest("lr", keys), "optim.lr");               // right name, wrong table
  EXPECT_EQ(nearest("optim.epochs", keys), "task.epochs");  // right name, wrong table
  EXPECT_EQ(nearest("lable_smoothing", {"ce", "label_smoothing", "tent"}), "label_smoothing");
  EXPECT_EQ(nearest("xyz", {"ce", "label_smoothing", "tent"}), "");
}

TEST(ValidateTrial, FillsEveryDefault) {
  Json resolved;
  EXPECT_TRUE(validate_text("[method]\nname = \"label_smoothing\"\n", &resolved).empty());
  std::size_t every_paradigm = 0;
  for (const ParamSpec& spec : core_schema()) {
    // Keys of other paradigms (data.bags.* for mil) stay out of a classify trial.
    if (key_paradigms(spec.name) != 0 && !(key_paradigms(spec.name) & kClassify)) {
      EXPECT_EQ(get_path(resolved, spec.name), nullptr) << spec.name;
      continue;
    }
    if (std::string(spec.name) == "data.classes") {  // no default: absent unless given
      EXPECT_EQ(get_path(resolved, spec.name), nullptr);
      continue;
    }
    ++every_paradigm;
    EXPECT_NE(get_path(resolved, spec.name), nullptr) << spec.name;
  }
  EXPECT_EQ(resolved["seed"], 0);
  EXPECT_EQ(resolved["task"]["paradigm"], "classify");
  EXPECT_EQ(resolved["task"]["epochs"], 10);
  EXPECT_EQ(resolved["task"]["batch_size"], 128);
  EXPECT_EQ(resolved["data"]["val_fraction"], 0.1);
  EXPECT_EQ(resolved["data"]["noise"]["kind"], "none");
  EXPECT_EQ(resolved["model"]["channels"], Json::array({32, 64}));
  EXPECT_EQ(resolved["optim"]["lr"], 0.1);
  EXPECT_EQ(resolved["optim"]["nesterov"], false);
  EXPECT_EQ(resolved["optim"]["schedule"], "constant");
  EXPECT_EQ(resolved["method"]["epsilon"], 0.1);  // the method's declared default, beside its name
  EXPECT_EQ(resolved["method"].size(), 2u);
  EXPECT_EQ(flatten(resolved).size(), every_paradigm + 1);
}

TEST(ValidateTrial, KeepsGivenValuesAndNormalisesNumbers) {
  Json resolved;
  EXPECT_TRUE(validate_text("optim.lr = 1\ntask.epochs = 4.0\n[method]\nname = \"ce\"\n", &resolved).empty());
  EXPECT_TRUE(resolved["optim"]["lr"].is_number_float());
  EXPECT_EQ(resolved["optim"]["lr"].dump(), "1.0");
  EXPECT_TRUE(resolved["task"]["epochs"].is_number_integer());
  EXPECT_EQ(resolved["task"]["epochs"], 4);
  EXPECT_FALSE(resolved["method"].contains("epsilon"));  // ce declares nothing
}

TEST(ValidateTrial, ReportsEveryKindOfMistakeWithPositions) {
  const std::string text =
      "seed = -3\n"                         // 1
      "lr = 0.1\n"                          // 2
      "[task]\n"                            // 3
      "epochs = 2.5\n"                      // 4
      "device = \"gpu\"\n"                  // 5
      "[optim]\n"                           // 6
      "lrr = 0.1\n"                         // 7
      "betas = [0.9, 0.99, 0.999]\n"        // 8
      "[data]\n"                            // 9
      "noise = 0.2\n"                       // 10
      "[method]\n"                          // 11
      "name = \"label_smoothing\"\n"        // 12
      "epsilom = 0.2\n";                    // 13
  std::vector<std::string> issues = validate_text(text);
  const std::vector<std::string> expected = {
      "t.toml:10:9: key 'data.noise': expected a table of settings, got float 0.2",
      "t.toml:2:6: key 'lr': unknown key (did you mean 'optim.lr'?)",
      "t.toml:13:11: key 'method.epsilom': unknown key; method 'label_smoothing' takes: epsilon "
      "(did you mean 'method.epsilon'?)",
      "t.toml:7:7: key 'optim.lrr': unknown key (did you mean 'optim.lr'?)",
      "t.toml:1:8: key 'seed': expected a value >= 0, got -3",
      "t.toml:5:10: key 'task.device': expected one of \"cpu\", \"cuda\", got \"gpu\" (did you mean 'cpu'?)",
      "t.toml:4:10: key 'task.epochs': expected an int, got float 2.5",
      "t.toml:8:9: key 'optim.betas': expected exactly 2 values (beta1, beta2), got 3",
  };
  EXPECT_EQ(issues, expected);
}

TEST(ValidateTrial, UnknownMethodSuggestsTheNearestName) {
  std::vector<std::string> issues = validate_text("[method]\nname = \"lable_smoothing\"\nepsilon = 0.2\n");
  ASSERT_EQ(issues.size(), 1u);  // its parameters cannot be checked, so they are not reported
  EXPECT_EQ(issues[0],
            "t.toml:2:8: key 'method.name': unknown method \"lable_smoothing\" (known methods: ce, "
            "label_smoothing, tent) (did you mean 'label_smoothing'?)");
}

TEST(ValidateTrial, MissingMethodIsReportedAtItsTableOrTheFile) {
  std::vector<std::string> in_table = validate_text("[method]\nepsilon = 0.1\n");
  ASSERT_EQ(in_table.size(), 1u);
  EXPECT_EQ(in_table[0],
            "t.toml:1:1: key 'method.name': missing: every trial needs a method (known methods: ce, "
            "label_smoothing, tent)");
  std::vector<std::string> no_table = validate_text("seed = 1\n");
  ASSERT_EQ(no_table.size(), 1u);
  EXPECT_EQ(no_table[0].rfind("t.toml: key 'method.name': missing", 0), 0u) << no_table[0];
}

TEST(ValidateTrial, MethodNameMustBeAString) {
  std::vector<std::string> issues = validate_text("method.name = 3\n");
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0], "t.toml:1:15: key 'method.name': expected a string, got int 3");
}

TEST(ValidateTrial, ParadigmMismatchNamesMethodParadigmsAndAsk) {
  std::vector<std::string> issues = validate_text("[method]\nname = \"tent\"\n");
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0],
            "t.toml:2:8: key 'method.name': method 'tent' supports tta, not the paradigm 'classify' asked by "
            "task.paradigm");
}

TEST(ValidateTrial, MethodParameterIsTypeAndRangeChecked) {
  std::vector<std::string> issues = validate_text("[method]\nname = \"label_smoothing\"\nepsilon = 1.5\n");
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0], "t.toml:3:11: key 'method.epsilon': expected a value in [0.0, 1.0], got 1.5");
  // ce has no epsilon at all.
  issues = validate_text("[method]\nname = \"ce\"\nepsilon = 0.1\n");
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0], "t.toml:3:11: key 'method.epsilon': unknown key; method 'ce' takes no parameters");
}

TEST(ValidateTrial, BadListElementIsReportedAtTheElement) {
  std::vector<std::string> issues = validate_text("model.hidden = [64, 0, 8]\nmethod.name = \"ce\"\n");
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0], "t.toml:1:21: key 'model.hidden': element 1: expected a value >= 1, got 0");
}

TEST(ValidateTrial, QuotedDottedKeyIsRejected) {
  std::vector<std::string> issues = validate_text("\"optim.lr\" = 0.5\nmethod.name = \"ce\"\n");
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_NE(issues[0].find("t.toml:1:14: key 'optim.lr': a quoted key with a '.'"), std::string::npos)
      << issues[0];
}

TEST(ValidateTrial, UnknownTableReportsEachLeaf) {
  std::vector<std::string> issues = validate_text("method.name = \"ce\"\n[optimiser]\nlr = 0.1\n");
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0], "t.toml:3:6: key 'optimiser.lr': unknown key (did you mean 'optim.lr'?)");
}

}  // namespace
}  // namespace reglab::config

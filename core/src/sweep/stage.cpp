#include "sweep/stage.h"

#include <set>

#include "sweep/sweep.h"

namespace reglab::sweep {

namespace fs = std::filesystem;

std::string StageResolver::attach(config::Json& trial, const config::SourceMap& where, const fs::path& sweep_file,
                                  std::vector<config::Issue>& issues) {
  const config::Json* from = config::get_path(trial, "init.from");
  if (from == nullptr || !from->is_string() || from->get<std::string>().empty()) return "";
  const config::SourceLocation at = config::locate(where, "init.from");
  auto problem = [&](const std::string& message) {
    issues.push_back({at, "init.from", message, ""});
    return std::string();
  };
  const fs::path file = fs::absolute(sweep_file.parent_path() / from->get<std::string>()).lexically_normal();
  const std::string id = file.string();
  if (auto e = errors_.find(id); e != errors_.end()) return "";  // reported with the first trial
  auto it = by_file_.find(id);
  if (it == by_file_.end()) {
    if (!fs::is_regular_file(file)) {
      errors_[id] = "missing";
      return problem("stage file " + file.string() + " does not exist");
    }
    config::Document doc;
    try {
      doc = config::load_toml_file(file);
    } catch (const config::ConfigError& e) {
      errors_[id] = "invalid";
      for (const auto& i : e.issues()) issues.push_back(i);
      return "";
    }
    if (!doc.tree.is_object()) doc.tree = config::Json::object();
    if (doc.tree.contains("sweep")) {
      errors_[id] = "sweep";
      return problem("stage file " + file.string() +
                     " has a [sweep] table; a stage is one configuration (remove [sweep], set `seed` if needed)");
    }
    const config::Json* nested = config::get_path(doc.tree, "init.from");
    if (nested != nullptr && nested->is_string() && !nested->get<std::string>().empty()) {
      errors_[id] = "chain";
      return problem("stage file " + file.string() + " itself starts from another stage; stages do not chain");
    }
    config::Json cfg = doc.tree;
    std::vector<config::Issue> stage_issues;
    config::validate_trial(cfg, doc.locations, lookup_, names_, stage_issues);
    if (!stage_issues.empty()) {
      errors_[id] = "invalid";
      for (auto& i : stage_issues) issues.push_back(std::move(i));
      return "";
    }
    Stage stage;
    stage.key = trial_key(cfg);
    stage.config = std::move(cfg);
    stage.file = file;
    it = by_file_.emplace(id, std::move(stage)).first;
    order_.push_back(id);
  }
  const Stage& stage = it->second;
  // A classify stage trains a classifier that classify trials fine-tune and
  // tta trials adapt at test time; an sft stage trains the warm-up policy
  // that rlvr trials start from.
  auto paradigm_of = [](const config::Json& cfg) {
    const config::Json* p = config::get_path(cfg, "task.paradigm");
    return p != nullptr && p->is_string() ? p->get<std::string>() : std::string("classify");
  };
  const std::string trial_paradigm = paradigm_of(trial);
  const std::string stage_paradigm = paradigm_of(stage.config);
  const bool policy_trial = trial_paradigm == "rlvr";
  if (trial_paradigm != "classify" && trial_paradigm != "tta" && !policy_trial)
    return problem("this trial is a " + trial_paradigm + " trial; init.from works with classify, tta and rlvr trials");
  const std::string wanted = policy_trial ? "sft" : "classify";
  if (stage_paradigm != wanted)
    return problem("the stage " + stage.file.string() + " is a " + stage_paradigm + " trial; this " + trial_paradigm +
                   " trial starts from a" + (wanted == "sft" ? "n " : " ") + wanted + " configuration");
  // The trial loads the stage's weights into its own model: they must be the
  // same model, and (classifiers) learn the same classes from the same inputs.
  const std::vector<std::string> same =
      policy_trial ? std::vector<std::string>{"policy"}
                   : std::vector<std::string>{"model", "data.dataset", "data.synthetic.features",
                                              "data.synthetic.classes", "data.classes"};
  for (const std::string& key : same) {
    const config::Json* mine = config::get_path(trial, key);
    const config::Json* theirs = config::get_path(stage.config, key);
    if ((mine == nullptr) != (theirs == nullptr) || (mine != nullptr && *mine != *theirs)) {
      return problem("the stage " + stage.file.string() + " has " + key + " = " +
                     (theirs ? theirs->dump() : "(unset)") + " but this trial has " + (mine ? mine->dump() : "(unset)") +
                     "; a trial starts from its stage's weights, so these must agree");
    }
  }
  trial["init"]["stage"] = stage.key;
  return stage.key;
}

std::vector<Stage> StageResolver::stages() const {
  std::vector<Stage> out;
  for (const auto& id : order_) out.push_back(by_file_.at(id));
  return out;
}

}  // namespace reglab::sweep

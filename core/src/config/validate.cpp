// config/validate.cpp — one trial configuration against the core and method schemas.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "config/schema.h"
#include "config/value_check.h"
#include "util/util.h"

namespace reglab::config {

namespace {

std::string join_key(const std::string& prefix, const std::string& part) {
  return prefix.empty() ? part : prefix + "." + part;
}

struct ParadigmName {
  std::uint32_t bit;
  const char* name;
};
constexpr ParadigmName kParadigms[] = {{kClassify, "classify"}, {kMil, "mil"}, {kTta, "tta"}, {kRlvr, "rlvr"},
                                       {kSft, "sft"}};

std::string paradigm_list(std::uint32_t bits) {
  std::vector<std::string> out;
  for (const ParadigmName& p : kParadigms) {
    if (bits & p.bit) out.push_back(p.name);
  }
  return out.empty() ? "no paradigm" : util::join(out, ", ");
}

const std::vector<std::pair<std::string, Json>>& core_defaults() {
  static const std::vector<std::pair<std::string, Json>> defaults = [] {
    std::vector<std::pair<std::string, Json>> out;
    for (const ParamSpec& spec : core_schema()) {
      Json value = parse_default(spec);
      if (!value.is_null()) out.emplace_back(spec.name, std::move(value));
    }
    return out;
  }();
  return defaults;
}

class Validator {
 public:
  Validator(const SourceMap& where, std::vector<Issue>& issues) : where_(where), issues_(issues) {}

  void add(const std::string& key, std::string message, std::string suggestion = "") {
    add_at(key, key, std::move(message), std::move(suggestion));
  }
  // `at` is the dotted key whose position to report (a list element's, say).
  void add_at(const std::string& at, const std::string& key, std::string message, std::string suggestion = "") {
    issues_.push_back(Issue{locate(where_, at), key, std::move(message), std::move(suggestion)});
  }

  void run(Json& trial, const MethodLookup& lookup, const MethodNames& names) {
    if (!trial.is_object()) {
      add("", "a trial configuration must be a table, got " + describe_value(trial));
      return;
    }
    resolve_method(trial, lookup, names);
    resolve_paradigm(trial);
    collect_known();
    walk(trial, "");
    check_paradigm(trial);
    check_cross_fields(trial);
    fill_defaults(trial);
  }

 private:
  void resolve_method(const Json& trial, const MethodLookup& lookup, const MethodNames& names) {
    const std::vector<std::string> known = names ? names() : std::vector<std::string>{};
    const std::string known_text = known.empty() ? "none found" : util::join(known, ", ");
    const Json* name = get_path(trial, "method.name");
    if (name == nullptr) {
      add("method.name", "missing: every trial needs a method (known methods: " + known_text + ")");
      return;
    }
    if (!name->is_string()) {
      add("method.name", "expected a string, got " + describe_value(*name));
      return;
    }
    method_name_ = name->get<std::string>();
    if (lookup) method_ = lookup(method_name_);
    if (!method_) {
      add("method.name", "unknown method \"" + method_name_ + "\" (known methods: " + known_text + ")",
          nearest(method_name_, known));
    }
  }

  // The trial's paradigm as a bit (0 when task.paradigm is not a known name,
  // which walk() reports).
  void resolve_paradigm(const Json& trial) {
    const Json* asked = get_path(trial, "task.paradigm");
    paradigm_name_ = "classify";
    if (asked == nullptr) {
      for (const auto& [key, value] : core_defaults()) {
        if (key == "task.paradigm") paradigm_name_ = value.get<std::string>();
      }
    } else {
      paradigm_name_ = asked->is_string() ? asked->get<std::string>() : "";
    }
    paradigm_bit_ = 0;
    for (const ParadigmName& p : kParadigms) {
      if (paradigm_name_ == p.name) paradigm_bit_ = p.bit;
    }
  }

  bool in_paradigm(const std::string& key) const {
    const std::uint32_t bits = key_paradigms(key);
    return bits == 0 || paradigm_bit_ == 0 || (bits & paradigm_bit_) != 0;
  }

  void collect_known() {
    for (const ParamSpec& spec : core_schema()) known_[spec.name] = &spec;
    if (method_) {
      for (const ParamSpec& spec : method_->params) {
        if (std::string(spec.name) != "name") known_["method." + std::string(spec.name)] = &spec;
      }
    }
    for (const auto& [key, spec] : known_) {
      keys_.push_back(key);
      for (std::size_t dot = key.find('.'); dot != std::string::npos; dot = key.find('.', dot + 1)) {
        sections_.insert(key.substr(0, dot));
      }
    }
  }

  void walk(Json& node, const std::string& path) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      const std::string key = join_key(path, it.key());
      Json& value = it.value();
      if (it.key().find('.') != std::string::npos || it.key().empty()) {
        add(key, "a quoted key with a '.' (or an empty key) names nothing; write the dotted key without quotes");
      } else if (auto spec = known_.find(key); spec != known_.end()) {
        if (key == "method.name") continue;  // checked by resolve_method
        if (!in_paradigm(key)) {
          add(key, "only applies to the paradigm " + paradigm_list(key_paradigms(key)) +
                       " (this trial's task.paradigm is \"" + paradigm_name_ + "\")");
          continue;
        }
        std::size_t element = std::string::npos;
        std::string problem = check_and_normalize(*spec->second, value, &element);
        if (!problem.empty()) {
          const std::string at = element == std::string::npos ? key : key + "." + std::to_string(element);
          add_at(at, key, problem, choice_suggestion(*spec->second, value));
        }
      } else if (sections_.count(key)) {
        if (value.is_object()) {
          walk(value, key);
        } else {
          add(key, "expected a table of settings, got " + describe_value(value));
        }
      } else if (!method_ && util::starts_with(key, "method.")) {
        // The method is unknown (already reported): its parameters cannot be checked.
      } else {
        report_unknown(key, value);
      }
    }
  }

  void report_unknown(const std::string& key, const Json& value) {
    if (value.is_object() && !value.empty()) {
      for (auto it = value.begin(); it != value.end(); ++it) report_unknown(join_key(key, it.key()), it.value());
      return;
    }
    std::string message = "unknown key";
    if (method_ && util::starts_with(key, "method.")) {
      std::vector<std::string> params;
      for (const ParamSpec& spec : method_->params) params.push_back(spec.name);
      message += params.empty() ? "; method '" + method_name_ + "' takes no parameters"
                                : "; method '" + method_name_ + "' takes: " + util::join(params, ", ");
    }
    add(key, message, nearest(key, keys_));
  }

  static std::string choice_suggestion(const ParamSpec& spec, const Json& value) {
    if (spec.type != ParamType::kString || !value.is_string() || !spec.choices || !*spec.choices) return "";
    return nearest(value.get<std::string>(), util::split(spec.choices, '|'));
  }

  void check_paradigm(const Json& trial) {
    if (!method_) return;
    const Json* asked = get_path(trial, "task.paradigm");
    std::string paradigm;
    if (asked == nullptr) {
      for (const auto& [key, value] : core_defaults()) {
        if (key == "task.paradigm") paradigm = value.get<std::string>();
      }
    } else if (asked->is_string()) {
      paradigm = asked->get<std::string>();
    }
    for (const ParadigmName& p : kParadigms) {
      if (paradigm == p.name && !(method_->paradigms & p.bit)) {
        add("method.name", "method '" + method_name_ + "' supports " + paradigm_list(method_->paradigms) +
                               ", not the paradigm '" + paradigm + "' asked by task.paradigm");
      }
    }
  }

  void check_cross_fields(const Json& trial) {
    const Json* betas = get_path(trial, "optim.betas");
    if (betas && betas->is_array() && betas->size() != 2) {
      add("optim.betas", "expected exactly 2 values (beta1, beta2), got " + std::to_string(betas->size()));
    }
    if (paradigm_bit_ == kMil) check_mil(trial);
    if (paradigm_bit_ == kClassify || paradigm_bit_ == kTta) check_classes(trial);
    if (paradigm_bit_ == kTta) check_tta(trial);
    if (paradigm_bit_ == kClassify || paradigm_bit_ == kMil || paradigm_bit_ == kTta) check_data_files(trial);
    if (paradigm_bit_ == kSft || paradigm_bit_ == kRlvr) check_policy_task(trial);
    if (paradigm_bit_ == kRlvr) check_rlvr(trial);
  }

  static std::int64_t int_or(const Json& v, std::int64_t fallback) {
    return v.is_number_integer() ? v.get<std::int64_t>() : fallback;
  }

  // The longest prompt and response of the in-domain and out-of-domain
  // problems; zero when a value is missing or of the wrong type (reported
  // elsewhere). Mirrors data/arith.h: a prompt is <bos> a OP b '\n'; a
  // response has 9 characters per column, then the answer and <eos>.
  static std::int64_t longest_example(const Json& trial, const char* ops_key, const char* max_key) {
    const Json ops = value_or_default(trial, ops_key);
    const std::int64_t digits = int_or(value_or_default(trial, max_key), 0);
    if (!ops.is_array() || digits <= 0) return 0;
    std::int64_t longest = 0;
    for (const Json& op : ops) {
      if (!op.is_string()) continue;
      const bool mul = op == "mul";
      const std::int64_t prompt = 1 + digits + 1 + (mul ? 1 : digits) + 1;
      const std::int64_t answer = digits + 1;  // a carry can add one digit
      const std::int64_t response = 9 * digits + answer + 1;
      longest = std::max(longest, prompt + response);
    }
    return longest;
  }

  void check_policy_task(const Json& trial) {
    const std::int64_t d = int_or(value_or_default(trial, "policy.d_model"), 0);
    const std::int64_t heads = int_or(value_or_default(trial, "policy.heads"), 0);
    if (d > 0 && heads > 0 && d % heads != 0) {
      add("policy.heads", std::to_string(heads) + " heads do not divide policy.d_model = " + std::to_string(d));
    }
    for (const auto& [lo, hi] : {std::pair{"arith.min_digits", "arith.max_digits"},
                                 std::pair{"arith.ood_min_digits", "arith.ood_max_digits"}}) {
      const std::int64_t a = int_or(value_or_default(trial, lo), 0);
      const std::int64_t b = int_or(value_or_default(trial, hi), 0);
      if (a > 0 && b > 0 && a > b) add(lo, "is " + std::to_string(a) + ", more than " + hi + " = " + std::to_string(b));
    }
    for (const char* key : {"arith.ops", "arith.ood_ops"}) {
      const Json ops = value_or_default(trial, key);
      if (ops.is_array() && ops.empty()) add(key, "lists no operation");
    }
    const std::int64_t context = int_or(value_or_default(trial, "policy.context"), 0);
    const std::int64_t id = longest_example(trial, "arith.ops", "arith.max_digits");
    const std::int64_t ood = longest_example(trial, "arith.ood_ops", "arith.ood_max_digits");
    const std::int64_t need = std::max(id, ood);
    if (context > 0 && need > context) {
      add("policy.context", "is " + std::to_string(context) + " tokens, shorter than the longest prompt plus "
                            "its worked answer (" + std::to_string(need) + " tokens, " +
                            (ood > id ? "out-of-domain problems of arith.ood_max_digits" : "problems of arith.max_digits") +
                            " digits)");
    }
  }

  void check_rlvr(const Json& trial) {
    const Json* from = get_path(trial, "init.from");
    if (from == nullptr || !from->is_string() || from->get<std::string>().empty()) {
      add("init.from", "an rlvr trial starts from a warm-up policy: set init.from to the sft configuration "
                       "(a TOML file) that trains it");
    }
    const std::int64_t votes = int_or(value_or_default(trial, "rlvr.votes"), 0);
    const std::int64_t trained = int_or(value_or_default(trial, "rlvr.trained"), 0);
    if (trained == 1) {
      add("rlvr.trained", "is 1: advantages are relative to the other responses of the same prompt, so a group "
                          "needs at least 2");
    }
    if (votes > 0 && trained > 0 && votes < trained) {
      add("rlvr.votes", "is " + std::to_string(votes) + ", fewer than rlvr.trained = " + std::to_string(trained) +
                            ": the trained responses are the first of the votes");
    }
    const Json t = value_or_default(trial, "rlvr.temperature");
    if (t.is_number() && !(t.get<double>() > 0)) {
      add("rlvr.temperature", "must be > 0 (log-probs are taken from logits / temperature), got " + t.dump());
    }
    const Json top_p = value_or_default(trial, "rlvr.top_p");
    if (top_p.is_number() && !(top_p.get<double>() > 0)) add("rlvr.top_p", "must be > 0, got " + top_p.dump());
  }

  // The number of classes of the configured dataset, 0 when not known here.
  static std::int64_t dataset_classes(const Json& trial) {
    const Json dataset = value_or_default(trial, "data.dataset");
    if (dataset == "fashion-mnist") return 10;
    const Json k = value_or_default(trial, "data.synthetic.classes");
    return dataset == "synthetic" && k.is_number_integer() ? k.get<std::int64_t>() : 0;
  }

  void check_classes(const Json& trial) {
    const Json* classes = get_path(trial, "data.classes");
    if (classes == nullptr || !classes->is_array()) return;  // unset, or a type error walk() reported
    const std::int64_t k = dataset_classes(trial);
    std::set<std::int64_t> seen;
    for (std::size_t i = 0; i < classes->size(); ++i) {
      const Json& c = (*classes)[i];
      if (!c.is_number_integer()) return;
      const std::int64_t v = c.get<std::int64_t>();
      const std::string at = "data.classes." + std::to_string(i);
      if (k > 0 && v >= k) {
        add_at(at, "data.classes", "class " + std::to_string(v) + " is out of range: the dataset has " +
                                       std::to_string(k) + " classes (0.." + std::to_string(k - 1) + ")");
      } else if (!seen.insert(v).second) {
        add_at(at, "data.classes", "class " + std::to_string(v) + " is listed twice");
      }
    }
    if (classes->size() < 2) add("data.classes", "lists " + std::to_string(classes->size()) +
                                                     " class(es); a classifier needs at least 2");
  }

  void check_tta(const Json& trial) {
    const Json* from = get_path(trial, "init.from");
    if (from == nullptr || !from->is_string() || from->get<std::string>().empty()) {
      add("init.from", "a tta trial adapts a trained source model: set init.from to the classify "
                       "configuration (a TOML file) that trains it");
    }
    const Json dataset = value_or_default(trial, "data.dataset");
    if (dataset.is_string() && dataset != "fashion-mnist") {
      add("data.dataset", "the tta paradigm corrupts Fashion-MNIST test images; got " + dataset.dump());
    }
    const Json corruptions = value_or_default(trial, "tta.corruptions");
    if (corruptions.is_array()) {
      std::set<std::string> seen;
      for (std::size_t i = 0; i < corruptions.size(); ++i) {
        if (corruptions[i].is_string() && !seen.insert(corruptions[i].get<std::string>()).second)
          add_at("tta.corruptions." + std::to_string(i), "tta.corruptions",
                 "corruption " + corruptions[i].dump() + " is listed twice");
      }
    }
    const Json ratio = value_or_default(trial, "tta.unknown_ratio");
    const Json* classes = get_path(trial, "data.classes");
    if (ratio.is_number() && ratio.get<double>() > 0) {
      const std::int64_t k = dataset_classes(trial);
      if (classes == nullptr || !classes->is_array() ||
          (k > 0 && static_cast<std::int64_t>(classes->size()) >= k)) {
        add("tta.unknown_ratio", "mixes in samples of the classes the source model never saw, so data.classes "
                                 "must leave some classes out");
      }
    }
    const Json held_out = value_or_default(trial, "tta.held_out");
    const Json test_limit = value_or_default(trial, "data.test_limit");
    if (held_out.is_number_integer() && test_limit.is_number_integer() && test_limit.get<std::int64_t>() > 0 &&
        held_out.get<std::int64_t>() >= test_limit.get<std::int64_t>()) {
      add("tta.held_out", "sets aside " + std::to_string(held_out.get<std::int64_t>()) +
                              " test samples but data.test_limit keeps only " +
                              std::to_string(test_limit.get<std::int64_t>()) + ": the stream would be empty");
    }
  }

  // The dataset's files must be there before a sweep row or a run is stored
  // (otherwise a mistyped data.root is found only when a trial starts). The
  // root is resolved like the trial does: relative to the working folder.
  // The file names are those data/fashion_mnist.cpp reads.
  void check_data_files(const Json& trial) {
    const Json dataset = value_or_default(trial, "data.dataset");
    const Json root = value_or_default(trial, "data.root");
    if (dataset != "fashion-mnist" || !root.is_string()) return;  // synthetic data, or a type error walk() reported
    namespace fs = std::filesystem;
    const fs::path dir = root.get<std::string>();
    std::error_code ec;
    const char* hint = " (install Debian's dataset-fashion-mnist, or set data.root to the folder of the four "
                       "Fashion-MNIST .gz files)";
    if (!fs::is_directory(dir, ec)) {
      add("data.root", "folder '" + dir.string() + "' " + (fs::exists(dir, ec) ? "is not a folder" : "does not exist") +
                           hint);
      return;
    }
    std::vector<std::string> bad;
    for (const char* name : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                             "t10k-labels-idx1-ubyte.gz"}) {
      const fs::path file = dir / name;
      if (!fs::is_regular_file(file, ec) || !std::ifstream(file, std::ios::binary)) bad.push_back(name);
    }
    if (!bad.empty())
      add("data.root", "folder '" + dir.string() + "' lacks readable " + util::join(bad, ", ") + hint);
  }

  // The given value, or the default when the key is absent.
  static Json value_or_default(const Json& trial, const std::string& key) {
    if (const Json* given = get_path(trial, key)) return *given;
    for (const auto& [k, value] : core_defaults()) {
      if (k == key) return value;
    }
    return nullptr;
  }

  void check_mil(const Json& trial) {
    const Json targets = value_or_default(trial, "data.bags.targets");
    if (targets.is_array() && targets.empty()) {
      add("data.bags.targets", "lists no class: every bag would be negative");
    }
    const Json noise = value_or_default(trial, "data.noise.kind");
    if (noise.is_string() && noise != "none") {
      add("data.noise.kind", "label noise is not available in the mil paradigm (bag labels come from the true "
                             "instance classes); got " + noise.dump());
    }
    const Json hidden = value_or_default(trial, "model.hidden");
    const Json heads = value_or_default(trial, "model.mil.heads");
    if (!hidden.is_array() || !heads.is_number_integer()) return;  // type errors are reported by walk()
    if (hidden.empty()) {
      add("model.hidden", "the mil paradigm needs at least one width: the last is the instance embedding size");
      return;
    }
    const Json& width = hidden.back();
    if (!width.is_number_integer() || width.get<std::int64_t>() < 1 || heads.get<std::int64_t>() < 1) return;
    if (width.get<std::int64_t>() % heads.get<std::int64_t>() != 0) {
      add("model.mil.heads", std::to_string(heads.get<std::int64_t>()) + " heads do not divide the instance " +
                                 "embedding size " + std::to_string(width.get<std::int64_t>()) +
                                 " (the last of model.hidden): each head attends over an equal slice of it");
    }
  }

  void fill_defaults(Json& trial) {
    for (const auto& [key, value] : core_defaults()) {
      if (in_paradigm(key) && get_path(trial, key) == nullptr) set_path(trial, key, value);
    }
    if (!method_) return;
    for (const ParamSpec& spec : method_->params) {
      const std::string key = "method." + std::string(spec.name);
      if (get_path(trial, key) != nullptr) continue;
      try {
        Json value = parse_default(spec);
        if (!value.is_null()) set_path(trial, key, std::move(value));
      } catch (const std::exception& err) {
        add(key, "method '" + method_name_ + "' declares a bad default: " + err.what());
      }
    }
  }

  const SourceMap& where_;
  std::vector<Issue>& issues_;
  std::string method_name_;
  std::string paradigm_name_;
  std::uint32_t paradigm_bit_ = 0;
  std::optional<MethodSchema> method_;
  std::map<std::string, const ParamSpec*> known_;
  std::vector<std::string> keys_;
  std::set<std::string> sections_;
};

}  // namespace

void validate_trial(Json& trial, const SourceMap& where, const MethodLookup& lookup, const MethodNames& names,
                    std::vector<Issue>& issues) {
  Validator(where, issues).run(trial, lookup, names);
}

}  // namespace reglab::config

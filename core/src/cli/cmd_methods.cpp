// `reglab methods [NAME]`: what plugins were found, and what a method takes.
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "plugins/loader.h"
#include "util/util.h"

namespace reglab::cli {

namespace {

std::string paradigm_names(std::uint32_t bits) {
  std::vector<std::string> out;
  if (bits & kClassify) out.push_back("classify");
  if (bits & kMil) out.push_back("mil");
  if (bits & kTta) out.push_back("tta");
  if (bits & kRlvr) out.push_back("rlvr");
  if (bits & kSft) out.push_back("sft");
  return util::join(out, ", ");
}

const char* type_name(ParamType t) {
  switch (t) {
    case ParamType::kBool: return "bool";
    case ParamType::kInt: return "int";
    case ParamType::kFloat: return "float";
    case ParamType::kString: return "string";
    case ParamType::kIntList: return "int list";
    case ParamType::kFloatList: return "float list";
    case ParamType::kStringList: return "string list";
  }
  return "?";
}

std::string range_text(const ParamSpec& p) {
  if (p.choices && *p.choices) return std::string("one of ") + p.choices;
  auto num = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return std::string(b);
  };
  if (p.has_min && p.has_max) return "[" + num(p.min) + ", " + num(p.max) + "]";
  if (p.has_min) return ">= " + num(p.min);
  if (p.has_max) return "<= " + num(p.max);
  return "";
}

int methods_command(const std::string& name) {
  const plugins::Registry& reg = plugins::registry();
  if (name.empty()) {
    std::printf("%-22s %-8s %-16s %s\n", "method", "version", "paradigms", "summary");
    for (const auto& p : reg.plugins())
      std::printf("%-22s %-8s %-16s %s\n", p.info->name, p.info->version, paradigm_names(p.info->paradigms).c_str(),
                  p.info->summary);
    if (reg.plugins().empty()) std::printf("(no methods found)\n");
    if (!reg.failures().empty()) {
      std::printf("\nfailed to load:\n");
      for (const auto& f : reg.failures()) std::printf("  %s\n    %s\n", f.path.c_str(), f.reason.c_str());
    }
    if (!reg.shadowed().empty()) {
      std::printf("\nshadowed (not used: a plugin of the same name was found first):\n");
      for (const auto& f : reg.shadowed()) std::printf("  %s\n    %s\n", f.path.c_str(), f.reason.c_str());
    }
    std::printf("\nsearched: ");
    std::vector<std::string> dirs;
    for (const auto& d : plugins::plugin_search_path()) dirs.push_back(d.string());
    std::printf("%s\n", util::join(dirs, ":").c_str());
    return 0;
  }
  const plugins::LoadedPlugin& p = reg.get(name);
  std::printf("%s %s\n%s\n\npaper      %s\nparadigms  %s\nlibrary    %s\n", p.info->name, p.info->version,
              p.info->summary, p.info->paper, paradigm_names(p.info->paradigms).c_str(), p.path.c_str());
  if (p.info->num_params == 0) {
    std::printf("\nno parameters\n");
    return 0;
  }
  std::printf("\n%-18s %-11s %-10s %-18s %s\n", "parameter", "type", "default", "range", "doc");
  for (std::size_t i = 0; i < p.info->num_params; ++i) {
    const ParamSpec& s = p.info->params[i];
    std::printf("%-18s %-11s %-10s %-18s %s\n", s.name, type_name(s.type), s.default_value, range_text(s).c_str(), s.doc);
  }
  std::printf("\nin a sweep:  [method]\n             name = \"%s\"\n", p.info->name);
  for (std::size_t i = 0; i < p.info->num_params; ++i)
    std::printf("             %s = %s\n", p.info->params[i].name, p.info->params[i].default_value);
  return 0;
}

}  // namespace

void add_methods(CLI::App& app, int& exit_code) {
  auto name = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("methods", "List the method plugins found (and those that failed to load), or describe one.");
  cmd->footer("Plugins are searched in the build's plugin folder, the install folder and REGLAB_PLUGIN_PATH.");
  cmd->add_option("name", *name, "method name: print its summary, paper, paradigms and parameters");
  cmd->callback([name, &exit_code] { exit_code = methods_command(*name); });
}

}  // namespace reglab::cli

// `reglab probe`: a method's hooks on tensors given in a JSON file.
#include <nlohmann/json.hpp>

#include <iostream>

#include "cli/commands.h"
#include "probe/probe.h"
#include "util/util.h"

namespace reglab::cli {

void add_probe(CLI::App& app, int& exit_code) {
  auto file = std::make_shared<std::string>();
  auto method = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("probe", "Evaluate a method's hooks on tensors from a JSON file (training hooks: loss, gradients, state; tta hooks: logits and the model after each step).");
  cmd->footer("The request format is documented in plugins/README.md. Use '-' to read standard input.");
  cmd->add_option("request", *file, "JSON request file")->required();
  cmd->add_option("--method", *method, "method name (overrides the request's \"method\")");
  cmd->callback([file, method, &exit_code] {
    std::string text;
    if (*file == "-") {
      text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    } else {
      text = util::read_file(*file);
    }
    nlohmann::json request;
    try {
      request = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      throw std::runtime_error(*file + ": invalid JSON: " + e.what());
    }
    if (!method->empty()) request["method"] = *method;
    std::cout << probe::run_probe(request).dump(2) << "\n";
    exit_code = 0;
  });
}

}  // namespace reglab::cli

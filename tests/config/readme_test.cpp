// experiments/README.md must agree with the code: its key table with
// core_schema(), and its TOML examples must load.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "config/schema.h"
#include "fake_methods.h"
#include "sweep/sweep.h"
#include "util/util.h"

namespace reglab::config {
namespace {

std::string readme() {
  return util::read_file(std::filesystem::path(REGLAB_PROJECT_SOURCE_DIR) / "experiments" / "README.md");
}

std::string number(double v, bool as_int) {
  char buf[64];
  if (as_int) {
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
  } else {
    std::snprintf(buf, sizeof buf, "%g", v);
  }
  return buf;
}

// The row the README must have for `spec`.
std::string expected_row(const ParamSpec& spec) {
  static const char* kTypes[] = {"bool", "int", "float", "string", "int list", "float list", "string list"};
  const bool is_list = spec.type == ParamType::kIntList || spec.type == ParamType::kFloatList ||
                       spec.type == ParamType::kStringList;
  const bool as_int = spec.type == ParamType::kInt || spec.type == ParamType::kIntList;
  std::string allowed = "any";
  if (spec.has_min || spec.has_max) {
    allowed = is_list ? "each " : "";
    if (spec.has_min && spec.has_max) {
      if (is_list) allowed.append("in ");
      allowed.append("[").append(number(spec.min, as_int)).append(", ").append(number(spec.max, as_int)).append("]");
    } else if (spec.has_min) {
      allowed.append(">= ").append(number(spec.min, as_int));
    } else {
      allowed.append("<= ").append(number(spec.max, as_int));
    }
  }
  if (*spec.choices) {
    std::vector<std::string> quoted;
    for (const std::string& c : util::split(spec.choices, '|')) quoted.push_back("`" + c + "`");
    allowed = util::join(quoted, ", ");
  }
  // No default: required (method.name) or unset unless given (data.classes).
  const std::string def = *spec.default_value                     ? "`" + std::string(spec.default_value) + "`"
                          : std::string(spec.name) == "method.name" ? "(required)"
                                                                    : "(unset)";
  return "| `" + std::string(spec.name) + "` | " + kTypes[static_cast<int>(spec.type)] + " | " + def + " | " +
         allowed + " | " + spec.doc + " |";
}

TEST(Readme, KeyTableMatchesCoreSchema) {
  const std::string text = readme();
  // Rows of the key table: the section "## Configuration keys" up to the next "## ".
  const std::size_t begin = text.find("## Configuration keys");
  ASSERT_NE(begin, std::string::npos);
  const std::string section = text.substr(begin, text.find("\n## ", begin + 1) - begin);
  std::size_t table_rows = 0;
  for (const std::string& line : util::split(section, '\n')) {
    if (util::starts_with(line, "| `")) ++table_rows;
  }
  for (const ParamSpec& spec : core_schema()) {
    EXPECT_NE(text.find(expected_row(spec) + "\n"), std::string::npos) << "missing or stale row:\n"
                                                                      << expected_row(spec);
  }
  EXPECT_EQ(table_rows, core_schema().size()) << "the README lists keys the schema does not have";
}

std::vector<std::string> toml_blocks(const std::string& text) {
  std::vector<std::string> out;
  const std::string open = "```toml\n";
  for (std::size_t at = text.find(open); at != std::string::npos; at = text.find(open, at)) {
    at += open.size();
    const std::size_t end = text.find("```", at);
    out.push_back(text.substr(at, end - at));
    at = end;
  }
  return out;
}

TEST(Readme, ExamplesLoad) {
  const std::vector<std::string> blocks = toml_blocks(readme());
  ASSERT_GE(blocks.size(), 5u);
  const auto dir = std::filesystem::path(REGLAB_TEST_BINARY_DIR) / "readme_examples";
  std::filesystem::create_directories(dir);
  int loaded = 0;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    if (blocks[i].find("extends") != std::string::npos) continue;  // needs a base file
    const auto file = dir / ("example_" + std::to_string(i) + ".toml");
    std::ofstream(file) << blocks[i];
    sweep::Sweep sweep;
    try {
      sweep = sweep::load_sweep(file, {}, test::fake_lookup, test::fake_names);
    } catch (const std::exception& err) {
      ADD_FAILURE() << "README example " << i << " does not load:\n" << blocks[i] << "\n" << err.what();
      continue;
    }
    ++loaded;
    // The counts the README states next to its examples.
    if (blocks[i].find("experiments/quickstart.toml") != std::string::npos) {
      EXPECT_EQ(sweep.trials.size(), 6u);
    }
    if (blocks[i].find("epsilon = 0.3") != std::string::npos) {
      EXPECT_EQ(sweep.trials.size(), 9u);
    }
    if (blocks[i].find("count = 16") != std::string::npos) {
      EXPECT_EQ(sweep.trials.size(), 16u);
    }
  }
  EXPECT_GE(loaded, 4);
}

}  // namespace
}  // namespace reglab::config

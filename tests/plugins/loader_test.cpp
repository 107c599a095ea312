// The plugin loader against real shared libraries: the in-tree methods, the
// deliberately broken fixtures, and a plugin built out of tree against the
// installed package.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <filesystem>

#include "plugins/loader.h"
#include "plugins/method_handle.h"

namespace fs = std::filesystem;
using reglab::plugins::load_plugin;
using reglab::plugins::PluginError;
using reglab::plugins::Registry;

namespace {

fs::path fixture(const std::string& stem) {
  return fs::path(REGLAB_FIXTURE_PLUGIN_DIR) / ("libreglab_fixture_" + stem + ".so");
}

std::string load_error(const fs::path& file) {
  try {
    load_plugin(file);
  } catch (const PluginError& e) {
    return e.what();
  }
  return "";
}

class NullLogger : public reglab::Logger {
 public:
  void log(reglab::LogLevel, std::string_view) override {}
};
class NullSink : public reglab::MetricSink {
 public:
  void record(std::string_view, double, std::int64_t) override {}
  void declare(std::string_view, reglab::MetricDirection) override {}
};

}  // namespace

TEST(Loader, LoadsAnInTreeMethodWithItsInfo) {
  auto p = load_plugin(fs::path(REGLAB_BUILD_PLUGIN_DIR) / "libreglab_ce.so");
  EXPECT_EQ(p.name(), "ce");
  EXPECT_NE(p.info->paradigms & reglab::kClassify, 0u);
  EXPECT_STREQ(p.info->abi.torch_version, reglab::plugins::core_fingerprint().torch_version);
}

TEST(Loader, WrongApiVersionNamesEveryDifferingField) {
  std::string msg = load_error(fixture("wrong_api"));
  ASSERT_FALSE(msg.empty());
  EXPECT_NE(msg.find("libreglab_fixture_wrong_api.so"), std::string::npos) << msg;
  // The fixture declares the core's API version + 41.
  const std::string api = "api_version: plugin " + std::to_string(reglab::kApiVersion + 41) + ", reglab " +
                          std::to_string(reglab::kApiVersion);
  EXPECT_NE(msg.find(api), std::string::npos) << msg;
  EXPECT_NE(msg.find("torch_version: plugin 0.0.1, reglab " TORCH_VERSION), std::string::npos) << msg;
  EXPECT_NE(msg.find("cxx11_abi: plugin 0, reglab 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("compiler: plugin imaginary-cc 1, reglab"), std::string::npos) << msg;
}

// A plugin built before API 5 (MetricSink::declare) is refused by its API
// version alone, with both numbers.
TEST(Loader, PluginOfApi4IsRefusedNamingBothVersions) {
  static_assert(reglab::kApiVersion == 5, "the fixture is the API before this one");
  std::string msg = load_error(fixture("api4"));
  ASSERT_FALSE(msg.empty());
  EXPECT_NE(msg.find("libreglab_fixture_api4.so"), std::string::npos) << msg;
  EXPECT_NE(msg.find("api_version: plugin 4, reglab 5"), std::string::npos) << msg;
  for (const char* other : {"torch_version:", "cxx11_abi:", "compiler:"})
    EXPECT_EQ(msg.find(other), std::string::npos) << other << " in " << msg;
}

TEST(Loader, MissingEntrySymbolIsOneClearMessage) {
  std::string msg = load_error(fixture("no_entry"));
  EXPECT_NE(msg.find("missing entry symbol 'reglab_plugin_entry'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no_entry"), std::string::npos) << msg;
}

TEST(Loader, MissingFileAndNonLibrary) {
  EXPECT_NE(load_error("/nonexistent/libreglab_x.so").find("does not exist"), std::string::npos);
  fs::path junk = fs::temp_directory_path() / "libreglab_junk_test.so";
  { std::ofstream(junk) << "not an ELF file"; }
  EXPECT_NE(load_error(junk).find("cannot be loaded"), std::string::npos);
  fs::remove(junk);
}

TEST(Loader, ThrowingFactoryNamesPluginAndHook) {
  auto p = load_plugin(fixture("throwing_factory"));
  try {
    reglab::plugins::MethodHandle h(p);
    FAIL() << "factory should have thrown";
  } catch (const PluginError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("method 'throwing_factory'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("failed in create"), std::string::npos) << msg;
    EXPECT_NE(msg.find("cannot allocate the imaginary buffer"), std::string::npos) << msg;
  }
}

TEST(Loader, ExceptionFromAHookIsRethrownWithPluginAndHook) {
  auto p = load_plugin(fixture("faulty"));
  reglab::plugins::MethodHandle h(p);
  reglab::Params params = reglab::plugins::resolve_params(*p.info, R"({"name":"faulty","mode":"throw"})");
  NullLogger log;
  NullSink sink;
  reglab::MethodContext ctx{params, log, sink, reglab::kClassify, 4, 3, 1, torch::kCPU, torch::kFloat};
  h.setup(ctx);
  reglab::Batch batch{torch::zeros({2, 3}), torch::tensor({0, 1}), torch::tensor({0, 1})};
  reglab::Outputs out;
  out.set("logits", torch::zeros({2, 3}, torch::requires_grad()));
  reglab::StepContext step{0, 1, 0, log, sink};
  try {
    h.training_loss(batch, out, step);
    FAIL() << "hook should have thrown";
  } catch (const PluginError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("method 'faulty'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("failed in training_loss: deliberate failure at epoch 0"), std::string::npos) << msg;
  }
}

TEST(Loader, ResolveParamsFillsDefaultsAndRejectsBadValues) {
  auto p = load_plugin(fixture("faulty"));
  auto params = reglab::plugins::resolve_params(*p.info, R"({"name":"faulty"})");
  EXPECT_EQ(params.get_string("mode"), "none");
  EXPECT_EQ(params.get_int("sleep_ms"), 0);
  EXPECT_THROW(reglab::plugins::resolve_params(*p.info, R"({"mode":"explode"})"), std::invalid_argument);
  EXPECT_THROW(reglab::plugins::resolve_params(*p.info, R"({"at_epoch":-1})"), std::invalid_argument);
  try {
    reglab::plugins::resolve_params(*p.info, R"({"sleep_mss":3})");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'sleep_ms'"), std::string::npos) << e.what();
  }
}

TEST(Registry, DiscoversGoodPluginsAndKeepsFailures) {
  Registry reg = Registry::discover({REGLAB_BUILD_PLUGIN_DIR, REGLAB_FIXTURE_PLUGIN_DIR});
  EXPECT_NE(reg.find("ce"), nullptr);
  EXPECT_NE(reg.find("label_smoothing"), nullptr);
  EXPECT_NE(reg.find("faulty"), nullptr);
  EXPECT_EQ(reg.find("wrong_api"), nullptr);
  bool saw_wrong_api = false, saw_no_entry = false;
  for (const auto& f : reg.failures()) {
    saw_wrong_api |= f.path.filename() == "libreglab_fixture_wrong_api.so";
    saw_no_entry |= f.path.filename() == "libreglab_fixture_no_entry.so";
  }
  EXPECT_TRUE(saw_wrong_api);
  EXPECT_TRUE(saw_no_entry);
}

TEST(Registry, UnknownNameSuggestsClosest) {
  Registry reg = Registry::discover({REGLAB_BUILD_PLUGIN_DIR});
  try {
    reg.get("label_smothing");
    FAIL();
  } catch (const PluginError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("unknown method 'label_smothing'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("did you mean 'label_smoothing'"), std::string::npos) << msg;
  }
}

TEST(Registry, SearchPathHonoursEnvironment) {
  setenv("REGLAB_PLUGIN_PATH", "/tmp/a:/tmp/b", 1);
  auto dirs = reglab::plugins::plugin_search_path();
  unsetenv("REGLAB_PLUGIN_PATH");
  ASSERT_GE(dirs.size(), 3u);
  EXPECT_EQ(dirs.front(), fs::path(REGLAB_BUILD_PLUGIN_DIR));
  EXPECT_EQ(dirs[dirs.size() - 2], fs::path("/tmp/a"));
  EXPECT_EQ(dirs.back(), fs::path("/tmp/b"));
}

// Installs reglab into a temporary prefix, builds tests/plugins/out_of_tree as
// its own CMake project against the installed package, and loads the result.
TEST(OutOfTree, PluginBuiltAgainstInstalledPackageLoads) {
  fs::path work = fs::temp_directory_path() / ("reglab_oot_" + std::to_string(getpid()));
  fs::remove_all(work);
  fs::create_directories(work);
  std::string cmake = REGLAB_CMAKE_COMMAND;
  auto run = [&](const std::string& cmd) {
    std::string full = cmd + " > " + (work / "log.txt").string() + " 2>&1";
    int rc = std::system(full.c_str());
    if (rc != 0) ADD_FAILURE() << cmd << "\n" << std::ifstream(work / "log.txt").rdbuf();
    return rc == 0;
  };
  ASSERT_TRUE(run(cmake + " --install '" REGLAB_BUILD_DIR "' --prefix '" + (work / "prefix").string() + "'"));
  EXPECT_TRUE(fs::exists(work / "prefix/include/reglab/method.h"));
  EXPECT_TRUE(fs::exists(work / "prefix/lib/cmake/reglab/reglabConfig.cmake"));
  ASSERT_TRUE(run(cmake + " -S '" REGLAB_TEST_SOURCE_DIR "/plugins/out_of_tree' -B '" + (work / "build").string() +
                  "' -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH='" + (work / "prefix").string() + "'"));
  ASSERT_TRUE(run(cmake + " --build '" + (work / "build").string() + "'"));
  auto p = load_plugin(work / "build/libreglab_squared_margin.so");
  EXPECT_EQ(p.name(), "squared_margin");

  // Its loss through the handle: z = [[2, 0, 1]], y = 0, margin 1:
  // terms k=1: max(0, 1 + 0 − 2)² = 0, k=2: max(0, 1 + 1 − 2)² = 0 → 0;
  // z = [[0, 1, 0.5]], y = 0: k=1: (1+1)² = 4, k=2: (1+0.5)² = 2.25 → 6.25.
  reglab::plugins::MethodHandle h(p);
  auto params = reglab::plugins::resolve_params(*p.info, "{}");
  NullLogger log;
  NullSink sink;
  reglab::MethodContext ctx{params, log, sink, reglab::kClassify, 2, 3, 1, torch::kCPU, torch::kDouble};
  h.setup(ctx);
  reglab::Outputs out;
  out.set("logits", torch::tensor({{2.0, 0.0, 1.0}, {0.0, 1.0, 0.5}}, torch::kDouble));
  reglab::Batch batch{torch::zeros({2, 1}), torch::tensor({0, 0}, torch::kLong), torch::tensor({0, 1}, torch::kLong)};
  reglab::StepContext step{0, 1, 0, log, sink};
  EXPECT_NEAR(h.training_loss(batch, out, step).item<double>(), (0.0 + 6.25) / 2, 1e-12);
  fs::remove_all(work);
}

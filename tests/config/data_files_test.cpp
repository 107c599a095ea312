// The dataset's folder and files are checked when the sweep is validated,
// before anything is stored, and the error points at data.root's line.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "fake_methods.h"
#include "sweep/sweep.h"

namespace reglab::sweep {
namespace {

namespace fs = std::filesystem;

class DataFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "reglab-data-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Loads a sweep whose data section is `data`; the issues, "" when valid.
  std::string issues_of(const std::string& data) {
    const fs::path file = dir_ / "sweep.toml";
    std::ofstream(file) << "[task]\nepochs = 1\n\n[data]\n" << data << "\n[method]\nname = \"ce\"\n\n"
                        << "[sweep]\nname = \"data-files\"\n";
    try {
      load_sweep(file, {}, test::fake_lookup, test::fake_names);
    } catch (const config::ConfigError& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
};

TEST_F(DataFiles, AMissingRootIsAnErrorAtItsLine) {
  const std::string msg = issues_of("root = \"" + (dir_ / "no-such-folder").string() + "\"\n");
  EXPECT_NE(msg.find((dir_ / "sweep.toml").string() + ":5:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("key 'data.root'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;
}

TEST_F(DataFiles, AFolderWithoutTheFilesNamesTheMissingOnes) {
  const fs::path root = dir_ / "partial";
  fs::create_directory(root);
  std::ofstream(root / "train-images-idx3-ubyte.gz") << "x";
  std::ofstream(root / "train-labels-idx1-ubyte.gz") << "x";
  const std::string msg = issues_of("dataset = \"fashion-mnist\"\nroot = \"" + root.string() + "\"\n");
  EXPECT_NE(msg.find("key 'data.root'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("t10k-images-idx3-ubyte.gz"), std::string::npos) << msg;
  EXPECT_NE(msg.find("t10k-labels-idx1-ubyte.gz"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("train-images"), std::string::npos) << msg;
}

TEST_F(DataFiles, SyntheticDataNeedsNoRoot) {
  EXPECT_EQ(issues_of("dataset = \"synthetic\"\nroot = \"" + (dir_ / "no-such-folder").string() + "\"\n"), "");
}

}  // namespace
}  // namespace reglab::sweep

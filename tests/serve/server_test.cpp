// `reglab serve` as a real child process over real HTTP: the assets it
// serves, its headers, its refusals, and its clean stop.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "serve/serve_fixture.h"
#include "store/temp_db.h"
#include "util/process.h"

namespace reglab::serve {
namespace {

using testing_support::ServerProcess;
using testing_support::TempDir;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing_support::write_demo_store(dir_.file("r.db"), dir_.file("logs"));
    server_ = std::make_unique<ServerProcess>(dir_.file("r.db"), dir_.path());
  }
  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(ServerTest, ServesThePageItsScriptsAndTheApiWithAStrictPolicy) {
  httplib::Client client("127.0.0.1", server_->port());
  auto page = client.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page->body.find("<script src=\"/app.js\">"), std::string::npos);
  const std::string csp = page->get_header_value("Content-Security-Policy");
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos);
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos);
  EXPECT_EQ(page->get_header_value("X-Content-Type-Options"), "nosniff");

  for (const char* path : {"/app.js", "/uplot.min.js"}) {
    auto js = client.Get(path);
    ASSERT_TRUE(js) << path;
    EXPECT_EQ(js->status, 200) << path;
    EXPECT_EQ(js->get_header_value("Content-Type"), "text/javascript; charset=utf-8") << path;
    EXPECT_GT(js->body.size(), 1000u) << path;
  }
  auto uplot = client.Get("/uplot.min.js");
  EXPECT_NE(uplot->body.find("uPlot"), std::string::npos);

  auto api = client.Get("/api/runs?sweep=demo&where=method.name%3Delr");
  ASSERT_TRUE(api);
  EXPECT_EQ(api->status, 200);
  EXPECT_EQ(api->get_header_value("Content-Type"), "application/json; charset=utf-8");
  EXPECT_EQ(nlohmann::json::parse(api->body)["total"], 4);

  auto bad = client.Get("/api/runs?sweep=demo&limit=0");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  auto missing = client.Get("/no/such/file.js");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST_F(ServerTest, RefusesWritesAndStopsCleanlyOnSigterm) {
  httplib::Client client("127.0.0.1", server_->port());
  auto post = client.Post("/api/runs", "{}", "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  auto del = client.Delete("/api/run?id=1");
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 405);
  EXPECT_EQ(server_->stop(), 0);
  httplib::Client after("127.0.0.1", server_->port());
  after.set_connection_timeout(1);
  EXPECT_FALSE(after.Get("/"));
}

TEST(ServeCommand, NamesAMissingDatabaseAndABadPort) {
  TempDir dir;
  const std::string db = dir.file("absent.db").string();
  const util::ProcessResult r = util::run_process({REGLAB_BINARY, "--db", db, "serve", "--port", "0"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(db), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(db));  // looking did not create it

  const util::ProcessResult p = util::run_process({REGLAB_BINARY, "serve", "--port", "70000"});
  EXPECT_NE(p.exit_code, 0);
  EXPECT_NE((p.out + p.err).find("--port"), std::string::npos) << p.out << p.err;
}

TEST(ServeCommand, HelpTeachesThePagesAndTheApi) {
  const util::ProcessResult r = util::run_process({REGLAB_BINARY, "serve", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("127.0.0.1"), std::string::npos);
  EXPECT_NE(r.out.find("results/README.md"), std::string::npos);
}

}  // namespace
}  // namespace reglab::serve

// reglab::Params, the SDK's typed view of a method's parameters: each getter
// returns its declared type, integers stand in for floats (TOML writes 1 for
// 1.0), and a missing name or another type is refused naming the parameter.
#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "reglab/params.h"

namespace reglab {
namespace {

Params sample() {
  return Params({{"on", true},
                 {"n", std::int64_t{3}},
                 {"rate", 0.25},
                 {"mode", std::string("mean")},
                 {"sizes", std::vector<std::int64_t>{1, 2}},
                 {"weights", std::vector<double>{0.5, 1.5}},
                 {"names", std::vector<std::string>{"gauss", "shot"}}});
}

std::string error_of(void (*f)(const Params&)) {
  try {
    f(sample());
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no exception)";
}

TEST(Params, EachGetterReturnsItsType) {
  const Params p = sample();
  EXPECT_TRUE(p.get_bool("on"));
  EXPECT_EQ(p.get_int("n"), 3);
  EXPECT_EQ(p.get_double("rate"), 0.25);
  EXPECT_EQ(p.get_double("n"), 3.0);
  EXPECT_EQ(p.get_string("mode"), "mean");
  EXPECT_EQ(p.get_int_list("sizes"), (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(p.get_double_list("weights"), (std::vector<double>{0.5, 1.5}));
  EXPECT_EQ(p.get_double_list("sizes"), (std::vector<double>{1.0, 2.0}));
  EXPECT_EQ(p.get_string_list("names"), (std::vector<std::string>{"gauss", "shot"}));
}

TEST(Params, AMissingNameOrAnotherTypeIsRefusedByName) {
  EXPECT_EQ(error_of([](const Params& p) { (void)p.get_string_list("absent"); }), "parameter 'absent' is not set");
  EXPECT_EQ(error_of([](const Params& p) { (void)p.get_string_list("mode"); }),
            "parameter 'mode' is not of type string list");
  EXPECT_EQ(error_of([](const Params& p) { (void)p.get_int("rate"); }), "parameter 'rate' is not of type int");
  EXPECT_EQ(error_of([](const Params& p) { (void)p.get_double_list("names"); }),
            "parameter 'names' is not of type float list");
}

}  // namespace
}  // namespace reglab

// The tta paradigm's pieces (paradigms/tta.h): the protocols' segments, the
// split of the test set into held-out and stream samples (with unknown
// classes for the open set), the segment order, the online scores; and the
// data.classes subset (data/dataset.h). Expected values are worked out by
// hand from the definitions in the headers.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>

#include "data/dataset.h"
#include "paradigms/tta.h"

namespace reglab::paradigms {
namespace {

std::vector<std::int64_t> to_vector(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kLong).contiguous();
  return {c.data_ptr<std::int64_t>(), c.data_ptr<std::int64_t>() + c.numel()};
}

TEST(TtaStream, StandardResetsBeforeEveryCorruption) {
  const auto segs = stream_segments("standard", {"fog", "contrast"}, 3);
  ASSERT_EQ(segs.size(), 2u);
  EXPECT_EQ(segs[0].corruption, "fog");
  EXPECT_EQ(segs[1].corruption, "contrast");
  for (std::size_t i = 0; i < segs.size(); ++i) {
    EXPECT_EQ(segs[i].severity, 3);
    EXPECT_TRUE(segs[i].reset_before);
    EXPECT_EQ(segs[i].corruption_index, static_cast<std::int64_t>(i));
  }
  // All ten by default, in the table order of data/corruptions.h.
  const auto all = stream_segments("standard", {}, 5);
  ASSERT_EQ(all.size(), 10u);
  EXPECT_EQ(all.front().corruption, "gaussian_noise");
  EXPECT_EQ(all.back().corruption, "fog");
}

TEST(TtaStream, ContinualNeverResetsAfterTheStartAndFollowsCottasOrder) {
  const auto segs = stream_segments("continual", {}, 5);
  const std::vector<std::string> expected = {"gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur",
                                             "motion_blur",    "fog",        "brightness",    "contrast",
                                             "elastic_transform", "pixelate"};
  ASSERT_EQ(segs.size(), expected.size());
  for (std::size_t i = 0; i < segs.size(); ++i) {
    EXPECT_EQ(segs[i].corruption, expected[i]);
    EXPECT_EQ(segs[i].severity, 5);
    EXPECT_EQ(segs[i].reset_before, i == 0) << i;
  }
}

TEST(TtaStream, GradualGoesUpAndDownPerCorruptionWithoutReset) {
  const auto segs = stream_segments("gradual", {"brightness", "fog"}, 5);
  ASSERT_EQ(segs.size(), 18u);
  const std::vector<int> up_down = {1, 2, 3, 4, 5, 4, 3, 2, 1};
  for (std::size_t i = 0; i < segs.size(); ++i) {
    EXPECT_EQ(segs[i].corruption, i < 9 ? "brightness" : "fog");
    EXPECT_EQ(segs[i].corruption_index, i < 9 ? 0 : 1);
    EXPECT_EQ(segs[i].severity, up_down[i % 9]);
    EXPECT_EQ(segs[i].reset_before, i == 0);
  }
}

void expect_invalid(const std::function<void()>& f, const std::string& fragment) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing '" << fragment << "'";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(TtaStream, BadProtocolCorruptionOrSeverityIsRejected) {
  expect_invalid([] { stream_segments("episodic", {}, 5); }, "tta.protocol");
  expect_invalid([] { stream_segments("standard", {"fogg"}, 5); }, "did you mean 'fog'");
  expect_invalid([] { stream_segments("standard", {"fog"}, 6); }, "severity must be 1..5");
  expect_invalid([] { stream_segments("continual", {"fog"}, 0); }, "severity must be 1..5");
  expect_invalid([] { stream_segments("standard", {"fog", "fog"}, 5); }, "twice");
}

TEST(TtaSplit, HeldOutAndStreamAreDisjointAndCoverTheKnownSamples) {
  const torch::Tensor labels = torch::arange(100, torch::kLong) % 10;
  const StreamSplit s = split_test_set(labels, {}, 30, 0.0, 7);
  EXPECT_EQ(s.held_out.size(0), 30);
  EXPECT_EQ(s.stream.size(0), 70);
  EXPECT_EQ(s.num_known, 70);
  std::set<std::int64_t> all;
  for (auto i : to_vector(s.held_out)) all.insert(i);
  for (auto i : to_vector(s.stream)) EXPECT_TRUE(all.insert(i).second) << "sample " << i << " is in both parts";
  EXPECT_EQ(all.size(), 100u);
  // Without data.classes the labels are the test set's own.
  EXPECT_TRUE(s.stream_labels.equal(labels.index_select(0, s.stream)));
  // Seeded: the same seed gives the same split, another seed another one.
  EXPECT_TRUE(split_test_set(labels, {}, 30, 0.0, 7).held_out.equal(s.held_out));
  EXPECT_FALSE(split_test_set(labels, {}, 30, 0.0, 8).held_out.equal(s.held_out));
}

TEST(TtaSplit, OpenSetRelabelsKnownClassesAndMixesInTheRatioOfUnknowns) {
  // 10 samples of each class 0..9; known classes 7 and 2 (relabelled 0, 1).
  const torch::Tensor labels = torch::arange(100, torch::kLong) % 10;
  const StreamSplit s = split_test_set(labels, {7, 2}, 4, 0.2, 3);
  // 20 known samples, 4 held out: 16 in the stream; r = 0.2 gives
  // round(16 · 0.2 / 0.8) = 4 unknowns, a fifth of the stream.
  EXPECT_EQ(s.held_out.size(0), 4);
  EXPECT_EQ(s.num_known, 16);
  ASSERT_EQ(s.stream.size(0), 20);
  const auto stream = to_vector(s.stream);
  const auto lab = to_vector(s.stream_labels);
  for (std::size_t i = 0; i < stream.size(); ++i) {
    const std::int64_t original = stream[i] % 10;
    if (i < 16) {
      EXPECT_TRUE(original == 7 || original == 2);
      EXPECT_EQ(lab[i], original == 7 ? 0 : 1);
    } else {
      EXPECT_TRUE(original != 7 && original != 2);
      EXPECT_EQ(lab[i], -1);
    }
  }
  for (auto i : to_vector(s.held_out)) EXPECT_TRUE(i % 10 == 7 || i % 10 == 2) << "held out are known samples";
}

TEST(TtaSplit, AnEmptyStreamOrTooFewUnknownsIsAnError) {
  const torch::Tensor labels = torch::arange(100, torch::kLong) % 10;
  EXPECT_THROW(split_test_set(labels, {}, 100, 0.0, 0), std::runtime_error);
  try {
    split_test_set(labels, {0, 1}, 0, 0.9, 0);  // 20 known ask for 180 unknowns; 80 exist
    ADD_FAILURE() << "accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("asks for 180"), std::string::npos) << e.what();
  }
}

TEST(TtaStream, SegmentOrderIsAPermutationSeededBySeedAndPosition) {
  const torch::Tensor a = segment_order(50, 1, 0);
  EXPECT_TRUE(std::get<0>(a.sort()).equal(torch::arange(50, torch::kLong)));
  EXPECT_TRUE(segment_order(50, 1, 0).equal(a));
  EXPECT_FALSE(segment_order(50, 1, 1).equal(a));
  EXPECT_FALSE(segment_order(50, 2, 0).equal(a));
}

// Two classes: logits (a, 0) give max softmax sigmoid(|a|), so a = ln(p/(1−p))
// gives confidence p for class 0.
torch::Tensor confident(const std::vector<double>& p) {
  std::vector<double> rows;
  for (double v : p) {
    rows.push_back(std::log(v / (1 - v)));
    rows.push_back(0.0);
  }
  return torch::tensor(rows, torch::kDouble).view({-1, 2});
}

TEST(TtaScores, ErrorUsedFractionAndAurocByHand) {
  OnlineScores s;
  // Known: confidence 0.9 (label 0, right), 0.6 (label 1, wrong: predicted 0).
  // Unknown: 0.7 and 0.5. Known above unknown in 3 of the 4 pairs.
  s.add(confident({0.9, 0.7}), torch::tensor({0, -1}, torch::kLong), 2);
  s.add(confident({0.6, 0.5}), torch::tensor({1, -1}, torch::kLong), 0);
  EXPECT_EQ(s.samples(), 4);
  EXPECT_DOUBLE_EQ(s.error(), 0.5);
  EXPECT_DOUBLE_EQ(s.used_fraction(), 0.5);
  EXPECT_NEAR(s.auroc(), 0.75, 1e-12);
  // A tie between a known and an unknown sample counts one half: known 0.7
  // against unknowns 0.7 and 0.5 gives (0.5 + 1) / 2.
  OnlineScores tie;
  tie.add(confident({0.7, 0.7, 0.5}), torch::tensor({0, -1, -1}, torch::kLong), 1);
  EXPECT_NEAR(tie.auroc(), 0.75, 1e-12);
  // Merging pools the samples: 3 known, 4 unknown.
  s.merge(tie);
  EXPECT_EQ(s.samples(), 7);
  EXPECT_NEAR(s.error(), 1.0 / 3.0, 1e-12);  // right: 0.9 and the tie's 0.7 sample
  EXPECT_NEAR(s.used_fraction(), 3.0 / 7.0, 1e-12);
  // Known 0.9, 0.6, 0.7 vs unknown 0.7, 0.5, 0.7, 0.5: 0.9 beats all 4;
  // 0.6 beats the two 0.5; 0.7 beats the two 0.5 and ties the two 0.7.
  EXPECT_NEAR(s.auroc(), (4 + 2 + 3) / 12.0, 1e-12);
}

TEST(TtaScores, ClosedSetHasNoAurocAndEmptyIsNan) {
  OnlineScores s;
  EXPECT_TRUE(std::isnan(s.error()));
  EXPECT_TRUE(std::isnan(s.used_fraction()));
  s.add(confident({0.9}), torch::tensor({0}, torch::kLong), 0);
  EXPECT_TRUE(std::isnan(s.auroc()));
  EXPECT_DOUBLE_EQ(s.error(), 0.0);
}

TEST(DataClasses, SelectClassesKeepsOrderAndRelabelsInListedOrder) {
  torch::Tensor x = torch::arange(6, torch::kFloat).view({6, 1});
  torch::Tensor y = torch::tensor({3, 0, 1, 3, 2, 0}, torch::kLong);
  data::select_classes(x, y, {3, 1}, 4);
  EXPECT_EQ(to_vector(y), (std::vector<std::int64_t>{0, 1, 0}));
  EXPECT_TRUE(x.flatten().equal(torch::tensor({0.0f, 2.0f, 3.0f})));
  torch::Tensor x2 = x, y2 = y;
  EXPECT_THROW(data::select_classes(x2, y2, {0, 4}, 4), std::runtime_error);
  EXPECT_THROW(data::select_classes(x2, y2, {1, 1}, 4), std::runtime_error);
}

TEST(DataClasses, LoadDatasetTrainsOnTheSubset) {
  data::DataOptions o;
  o.dataset = "synthetic";
  o.synthetic_classes = 4;
  o.synthetic_samples = 400;
  o.synthetic_test_samples = 200;
  o.classes = {2, 0};
  o.normalize = false;  // the statistics of a subset differ from the full set's
  const data::Dataset ds = data::load_dataset(o, 0);
  EXPECT_EQ(ds.num_classes, 2);
  for (const torch::Tensor* y : {&ds.train.y, &ds.val.y, &ds.test.y}) {
    EXPECT_GE(y->min().item<std::int64_t>(), 0);
    EXPECT_LE(y->max().item<std::int64_t>(), 1);
  }
  // The same samples as the full set's classes 2 and 0, relabelled: the
  // subset's test set is the full test set's rows of those classes.
  data::DataOptions all = o;
  all.classes.clear();
  const data::Dataset full = data::load_dataset(all, 0);
  const torch::Tensor keep = (full.test.y == 2) | (full.test.y == 0);
  EXPECT_TRUE(ds.test.x.equal(full.test.x.index({keep})));
  EXPECT_TRUE(ds.test.y.equal(torch::where(full.test.y.index({keep}) == 2, torch::zeros_like(full.test.y.index({keep})),
                                            torch::ones_like(full.test.y.index({keep})))));
}

}  // namespace
}  // namespace reglab::paradigms

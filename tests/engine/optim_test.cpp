// Learning-rate schedules and optimizer construction, against values worked
// out by hand from the schedule definitions in paradigms/optim.h.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "paradigms/optim.h"

using reglab::paradigms::lr_at_epoch;
using reglab::paradigms::OptimOptions;

TEST(Schedule, StepDropsAtEachMilestone) {
  OptimOptions o;
  o.lr = 0.1;
  o.schedule = "step";
  o.milestones = {2, 4};
  o.gamma = 0.1;
  EXPECT_DOUBLE_EQ(lr_at_epoch(o, 0, 6), 0.1);
  EXPECT_DOUBLE_EQ(lr_at_epoch(o, 1, 6), 0.1);
  EXPECT_NEAR(lr_at_epoch(o, 2, 6), 0.01, 1e-15);
  EXPECT_NEAR(lr_at_epoch(o, 3, 6), 0.01, 1e-15);
  EXPECT_NEAR(lr_at_epoch(o, 4, 6), 0.001, 1e-15);
}

TEST(Schedule, CosineOverTheRun) {
  OptimOptions o;
  o.lr = 0.1;
  o.schedule = "cosine";
  // 0.1·(1 + cos(π e/4))/2 for e = 0..3: 0.1, 0.0853553390593, 0.05, 0.0146446609407
  EXPECT_NEAR(lr_at_epoch(o, 0, 4), 0.1, 1e-12);
  EXPECT_NEAR(lr_at_epoch(o, 1, 4), 0.0853553390593274, 1e-12);
  EXPECT_NEAR(lr_at_epoch(o, 2, 4), 0.05, 1e-12);
  EXPECT_NEAR(lr_at_epoch(o, 3, 4), 0.0146446609406726, 1e-12);
  o.eta_min = 0.01;  // 0.01 + 0.09·(1 + cos(π/2))/2 = 0.055
  EXPECT_NEAR(lr_at_epoch(o, 2, 4), 0.055, 1e-12);
}

TEST(Schedule, CosineWarmRestarts) {
  OptimOptions o;
  o.lr = 0.1;
  o.schedule = "cosine_restarts";
  o.t0 = 2;
  o.t_mult = 1;  // periods of 2: 0.1, 0.05, 0.1, 0.05
  EXPECT_NEAR(lr_at_epoch(o, 0, 10), 0.1, 1e-12);
  EXPECT_NEAR(lr_at_epoch(o, 1, 10), 0.05, 1e-12);
  EXPECT_NEAR(lr_at_epoch(o, 2, 10), 0.1, 1e-12);
  EXPECT_NEAR(lr_at_epoch(o, 3, 10), 0.05, 1e-12);
  o.t0 = 1;
  o.t_mult = 2;  // periods [0], [1, 2], [3..6]
  EXPECT_NEAR(lr_at_epoch(o, 0, 10), 0.1, 1e-12);
  EXPECT_NEAR(lr_at_epoch(o, 1, 10), 0.1, 1e-12);
  EXPECT_NEAR(lr_at_epoch(o, 2, 10), 0.05, 1e-12);
  EXPECT_NEAR(lr_at_epoch(o, 3, 10), 0.1, 1e-12);
  EXPECT_NEAR(lr_at_epoch(o, 4, 10), 0.0853553390593274, 1e-12);
}

TEST(Schedule, UnknownScheduleIsRejected) {
  OptimOptions o;
  o.schedule = "linear";
  EXPECT_THROW(lr_at_epoch(o, 0, 1), std::invalid_argument);
}

namespace {
// One step on loss = w (gradient 1) from w = 1.
double one_step(OptimOptions o) {
  torch::Tensor w = torch::ones({1}, torch::dtype(torch::kDouble).requires_grad(true));
  auto opt = reglab::paradigms::make_optimizer(o, {w});
  opt->zero_grad();
  w.sum().backward();
  opt->step();
  return w.item<double>();
}
}  // namespace

TEST(Optimizer, SgdMomentumNesterovAndWeightDecay) {
  OptimOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  EXPECT_NEAR(one_step(o), 0.9, 1e-12);   // w − lr·g
  o.nesterov = true;                      // g + μ·buf = 1.9
  EXPECT_NEAR(one_step(o), 0.81, 1e-12);
  o.nesterov = false;
  o.weight_decay = 0.5;                   // g = 1 + 0.5·w = 1.5
  EXPECT_NEAR(one_step(o), 0.85, 1e-12);
}

TEST(Optimizer, AdamFirstStepMovesByLr) {
  // Adam's bias-corrected first step is lr·g/(|g| + eps) ≈ lr.
  OptimOptions o;
  o.name = "adam";
  o.lr = 0.01;
  EXPECT_NEAR(one_step(o), 0.99, 1e-7);
  o.name = "adamw";
  o.weight_decay = 0.1;  // decoupled: w·(1 − lr·wd) − lr = 0.999 − 0.01
  EXPECT_NEAR(one_step(o), 0.989, 1e-7);
  o.name = "rmsprop";
  EXPECT_THROW(one_step(o), std::invalid_argument);
}

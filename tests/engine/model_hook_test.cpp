// The paradigm's side of the model hook (reglab/method.h, transform_model and
// before_forward): the before_forward layer and the optimizer over groups.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "models/models.h"
#include "paradigms/optim.h"
#include "reglab/method.h"

namespace reglab {
namespace {

// The hook runs once before every forward pass with the model's mode, the
// output is unchanged and the other layers keep their names.
TEST(ModelHook, BeforeForwardRunsBeforeEveryPass) {
  models::ModelOptions o;
  o.hidden = {3};
  torch::manual_seed(0);
  torch::nn::Sequential plain = models::make_model(o, {4}, 2);
  std::vector<bool> calls;
  torch::nn::Sequential hooked = models::with_before_forward(plain, [&](bool training) { calls.push_back(training); });

  std::vector<std::string> names;
  for (const auto& c : hooked->named_children()) names.push_back(c.key());
  EXPECT_EQ(names, (std::vector<std::string>{"before_forward", "0", "1", "2", "3"}));
  std::vector<std::string> params;
  for (const auto& p : hooked->named_parameters()) params.push_back(p.key());
  EXPECT_EQ(params, (std::vector<std::string>{"1.weight", "1.bias", "3.weight", "3.bias"}));

  const torch::Tensor x = torch::randn({5, 4});
  EXPECT_TRUE(torch::equal(hooked->forward(x), plain->forward(x)));
  hooked->eval();
  hooked->forward(x);
  hooked->train();
  hooked->forward(x);
  EXPECT_EQ(calls, (std::vector<bool>{true, false, true}));
}

// Each group gets its own weight decay; everything else is the configured
// optimizer's. SGD lr 0.1, no momentum, gradient 1 everywhere:
// p ← p − 0.1·(1 + wd·p).
TEST(ModelHook, OptimizerAppliesEachGroupsWeightDecay) {
  const torch::Tensor p = torch::full({2}, 2.0).requires_grad_(true);
  const torch::Tensor q = torch::full({1}, 4.0).requires_grad_(true);
  paradigms::OptimOptions o;
  o.lr = 0.1;
  o.momentum = 0.0;
  o.weight_decay = 0.5;  // replaced by the groups' own values
  auto opt = paradigms::make_optimizer(o, std::vector<ParamGroup>{{{p}, 0.25}, {{}, 0.5}, {{q}, 0.0}});
  ASSERT_EQ(opt->param_groups().size(), 2u);  // the empty group is left out
  (p.sum() + q.sum()).backward();
  opt->step();
  EXPECT_TRUE(torch::allclose(p, torch::full({2}, 2.0 - 0.1 * (1 + 0.25 * 2.0))));
  EXPECT_TRUE(torch::allclose(q, torch::full({1}, 4.0 - 0.1)));
  // A schedule sets every group's learning rate.
  paradigms::set_lr(*opt, 0.01);
  for (const auto& g : opt->param_groups()) EXPECT_EQ(g.options().get_lr(), 0.01);

  o.name = "adamw";
  auto adamw = paradigms::make_optimizer(o, std::vector<ParamGroup>{{{p}, 0.25}, {{q}, 0.0}});
  ASSERT_EQ(adamw->param_groups().size(), 2u);
  EXPECT_EQ(static_cast<torch::optim::AdamWOptions&>(adamw->param_groups()[0].options()).weight_decay(), 0.25);
  EXPECT_EQ(static_cast<torch::optim::AdamWOptions&>(adamw->param_groups()[1].options()).weight_decay(), 0.0);
}

}  // namespace
}  // namespace reglab

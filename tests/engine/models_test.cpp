// Model construction: layer order, output shapes and parameter counts worked
// out by hand (and matched against the same stacks built in PyTorch).
#include "models/models.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace {

using reglab::models::make_model;
using reglab::models::ModelOptions;

std::int64_t parameter_count(torch::nn::Sequential& net) {
  std::int64_t n = 0;
  for (const auto& p : net->parameters()) n += p.numel();
  return n;
}

std::vector<std::string> layer_names(torch::nn::Sequential& net) {
  std::vector<std::string> names;
  for (const auto& m : net->children()) names.push_back(m->name());
  return names;
}

TEST(Mlp, FashionMnistShapeAndParameterCount) {
  ModelOptions o;
  o.arch = "mlp";
  o.hidden = {64};
  auto net = make_model(o, {1, 28, 28}, 10);
  // 784·64 + 64 + 64·10 + 10 = 50176 + 64 + 640 + 10 = 50890
  EXPECT_EQ(parameter_count(net), 50890);
  EXPECT_EQ(net->forward(torch::randn({5, 1, 28, 28})).sizes(), (std::vector<std::int64_t>{5, 10}));
  EXPECT_EQ(layer_names(net), (std::vector<std::string>{"torch::nn::FlattenImpl", "torch::nn::LinearImpl",
                                                         "torch::nn::ReLUImpl", "torch::nn::LinearImpl"}));
}

TEST(Mlp, VectorInputTwoHiddenLayers) {
  ModelOptions o;
  o.hidden = {32, 16};
  auto net = make_model(o, {20}, 4);
  // 20·32+32 + 32·16+16 + 16·4+4 = 672 + 528 + 68 = 1268
  EXPECT_EQ(parameter_count(net), 1268);
  EXPECT_EQ(net->forward(torch::randn({7, 20})).sizes(), (std::vector<std::int64_t>{7, 4}));
}

TEST(Mlp, NoHiddenLayersIsLogisticRegression) {
  ModelOptions o;
  o.hidden = {};
  auto net = make_model(o, {20}, 3);
  EXPECT_EQ(parameter_count(net), 20 * 3 + 3);
}

TEST(Mlp, DropoutAfterEachHiddenReluActsOnlyInTraining) {
  ModelOptions o;
  o.hidden = {128, 64};
  o.dropout = 0.5;
  auto net = make_model(o, {20}, 3);
  EXPECT_EQ(layer_names(net),
            (std::vector<std::string>{"torch::nn::FlattenImpl", "torch::nn::LinearImpl", "torch::nn::ReLUImpl",
                                      "torch::nn::DropoutImpl", "torch::nn::LinearImpl", "torch::nn::ReLUImpl",
                                      "torch::nn::DropoutImpl", "torch::nn::LinearImpl"}));
  torch::Tensor x = torch::randn({4, 20});
  net->train();
  EXPECT_FALSE(torch::equal(net->forward(x), net->forward(x)));
  net->eval();
  EXPECT_TRUE(torch::equal(net->forward(x), net->forward(x)));
}

TEST(Cnn, ShapeAndParameterCount) {
  ModelOptions o;
  o.arch = "cnn";
  o.channels = {8, 16};
  auto net = make_model(o, {1, 28, 28}, 10);
  // conv 1->8 (3x3, no bias): 72; BN(8): 16; conv 8->16: 1152; BN(16): 32;
  // Linear 16->10: 170. Total 1442.
  EXPECT_EQ(parameter_count(net), 1442);
  EXPECT_EQ(net->forward(torch::randn({3, 1, 28, 28})).sizes(), (std::vector<std::int64_t>{3, 10}));
  const auto names = layer_names(net);
  ASSERT_EQ(names.size(), 11u);
  EXPECT_EQ(names[0], "torch::nn::Conv2dImpl");
  EXPECT_EQ(names[1], "torch::nn::BatchNorm2dImpl");
  EXPECT_EQ(names[2], "torch::nn::ReLUImpl");
  EXPECT_EQ(names[3], "torch::nn::MaxPool2dImpl");
  EXPECT_EQ(names[8], "torch::nn::AdaptiveAvgPool2dImpl");
  EXPECT_EQ(names[10], "torch::nn::LinearImpl");
}

TEST(Cnn, MultiChannelInput) {
  ModelOptions o;
  o.arch = "cnn";
  o.channels = {4};
  auto net = make_model(o, {3, 9, 7}, 5);
  // conv 3->4: 108; BN: 8; Linear 4->5: 25. Total 141.
  EXPECT_EQ(parameter_count(net), 141);
  EXPECT_EQ(net->forward(torch::randn({2, 3, 9, 7})).sizes(), (std::vector<std::int64_t>{2, 5}));
}

TEST(Models, InitialisationFollowsTheGlobalSeed) {
  ModelOptions o;
  o.hidden = {16};
  torch::manual_seed(7);
  auto a = make_model(o, {20}, 3);
  torch::manual_seed(7);
  auto b = make_model(o, {20}, 3);
  auto pa = a->parameters();
  auto pb = b->parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i]));
}

TEST(Models, RejectsBadOptions) {
  ModelOptions o;
  o.arch = "resnet";
  EXPECT_THROW(make_model(o, {1, 28, 28}, 10), std::invalid_argument);
  o.arch = "cnn";
  EXPECT_THROW(make_model(o, {20}, 4), std::invalid_argument);  // cnn needs [C, H, W]
  o.channels = {4, 4, 4, 4, 4};  // 28 -> 14 -> 7 -> 3 -> 1 -> cannot pool again
  EXPECT_THROW(make_model(o, {1, 28, 28}, 10), std::invalid_argument);
  o.channels = {4, 4, 4, 4};  // ... -> 1: still fine
  EXPECT_NO_THROW(make_model(o, {1, 28, 28}, 10));
  o.arch = "mlp";
  o.hidden = {0};
  EXPECT_THROW(make_model(o, {20}, 4), std::invalid_argument);
  o.hidden = {8};
  o.dropout = 1.0;
  EXPECT_THROW(make_model(o, {20}, 4), std::invalid_argument);
}

}  // namespace

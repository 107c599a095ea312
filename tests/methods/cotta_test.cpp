// Golden tests of the cotta plugin and of its image augmentations.
//
// Reference values: the official qinenergy/cotta @ c212a20 `cifar/cotta.py`
// (configure_model, collect_params, the CoTTA class and its forward_and_adapt,
// unmodified) run with python3-torch 1.13 on the model and inputs below, with
// the optimizer of `cifar10c.py::setup_optimizer` (Adam, betas 0.9/0.999, no
// weight decay). torchvision is not needed there: the CoTTA object's transform
// was replaced by clip-to-[0, 1], which is what this plugin's augmentation
// does to [B, D] inputs with aug_noise_std = 0 (the official pipeline starts
// and ends with a clip to [0, 1]). The BatchNorm1d of the model below was a
// BatchNorm2d on [B, H, 1, 1] there, because the official configure_model
// recognises BatchNorm2d; both normalise over the batch alike. The restore
// masks of the official code come from the global torch generator: seeded
// there with torch.manual_seed(seed + 1), they are the draws this plugin makes
// from its restore generator for TtaContext::seed = seed.
//
// The first Linear has no bias: ahead of BatchNorm its gradient is zero up to
// rounding, and Adam would turn that rounding into steps of size lr that no
// second implementation reproduces.
#include <gtest/gtest.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <string>
#include <vector>

#include "../../plugins/cotta/augment.h"
#include "methods/method_harness.h"
#include "methods/tta_harness.h"

namespace reglab::testing {
namespace {

using Vec = std::vector<double>;

const Rows kW1 = {{0.5, -0.3, 0.2}, {-0.4, 0.6, 0.1}, {0.3, 0.2, -0.5}, {0.1, -0.2, 0.4}};
const Vec kGamma = {1.0, 0.8, 1.2, 0.9};
const Vec kBeta = {0.1, -0.2, 0.0, 0.3};
const Rows kW2 = {{0.7, -0.5, 0.3, 0.2}, {-0.3, 0.8, -0.6, 0.4}, {0.2, 0.1, 0.9, -0.7}};
const Vec kB2 = {0.05, -0.05, 0.0};
// Mean anchor confidence 0.60594 (x1) and 0.56677 (x2); both have entries
// outside [0, 1], so the clip of the augmentation changes them.
const Rows kX1 = {{0.2, 0.9, -0.4}, {1.3, 0.1, 0.5}, {0.6, 0.4, 1.1}, {-0.2, 0.7, 0.3}};
const Rows kX2 = {{0.8, -0.1, 0.6}, {0.3, 1.2, 0.2}, {0.9, 0.5, -0.3}, {0.1, 0.2, 0.9}};

constexpr double kTol = 2e-5;

torch::Tensor mat(const Rows& r) { return make_logits(r, torch::kFloat); }

// Linear(3,4, no bias) -> BatchNorm1d(4) -> ReLU -> Linear(4,3).
torch::nn::Sequential model() {
  torch::nn::Linear fc1(torch::nn::LinearOptions(3, 4).bias(false));
  torch::nn::BatchNorm1d bn(torch::nn::BatchNorm1dOptions(4).eps(1e-5).momentum(0.1));
  torch::nn::Linear fc2(4, 3);
  torch::NoGradGuard no_grad;
  fc1->weight.copy_(mat(kW1));
  bn->weight.copy_(mat({kGamma})[0]);
  bn->bias.copy_(mat({kBeta})[0]);
  fc2->weight.copy_(mat(kW2));
  fc2->bias.copy_(mat({kB2})[0]);
  return torch::nn::Sequential(fc1, bn, torch::nn::ReLU(), fc2);
}

torch::Tensor param(TtaSession& s, const std::string& name) {
  return s.model()->named_parameters()[name].detach();
}

void expect_vec_near(const torch::Tensor& actual, const Vec& expected, double tol) {
  expect_rows_near(actual.unsqueeze(0), {expected}, tol);
}

struct StudentAfter {
  Rows w1;
  Vec gamma, beta;
  Rows w2;
  Vec b2;
};

void expect_student(TtaSession& s, const StudentAfter& e) {
  SCOPED_TRACE("student parameters");
  expect_rows_near(param(s, "0.weight"), e.w1, kTol);
  expect_vec_near(param(s, "1.weight"), e.gamma, kTol);
  expect_vec_near(param(s, "1.bias"), e.beta, kTol);
  expect_rows_near(param(s, "3.weight"), e.w2, kTol);
  expect_vec_near(param(s, "3.bias"), e.b2, kTol);
}

// Step on x2 (mean anchor confidence 0.5668 < 0.58: augmentation average),
// then on x1 (0.6059 ≥ 0.58: the teacher's logits on x, from the teacher after
// the first EMA update). lr 0.05, α 0.5, rst 0, 32 augmentations, noise 0.
const Rows kPred0 = {{1.27445126, -0.008456368, -0.532931745},
                     {-0.229339376, 0.31515643, 0.710160136},
                     {0.800161481, -1.05426919, 1.39366424},
                     {0.275914311, 0.462168664, -0.846011698}};
const StudentAfter kAStep0 = {
    {{0.549999893, -0.250000358, 0.150000051},
     {-0.449999809, 0.55000025, 0.149999797},
     {0.25000003, 0.249999985, -0.450000107},
     {0.0500001349, -0.150000334, 0.44999972}},
    {0.950000226, 0.75000006, 1.15000033, 0.949998498},
    {0.149999738, -0.24999994, 0.0499999374, 0.349998742},
    {{0.650000215, -0.450000376, 0.349999964, 0.15000008},
     {-0.250000209, 0.75000006, -0.649999917, 0.449999928},
     {0.150002226, 0.149999946, 0.850000024, -0.650000632}},
    {0.0999999046, -0.0999999046, -0.0499945283}};
const Rows kAPred1 = {{0.502992094, -0.936018765, 1.5121299},
                      {1.33587515, -0.299028605, -0.0921996832},
                      {0.763037622, 0.343043834, -0.860274673},
                      {-0.198597968, 0.371396482, 0.0470021442}};
const StudentAfter kAStep1 = {
    {{0.575359762, -0.213756546, 0.131412432},
     {-0.488097012, 0.549017906, 0.124587134},
     {0.249996185, 0.274414986, -0.399960876},
     {0.00336885825, -0.10836415, 0.490098834}},
    {0.971487582, 0.744276702, 1.16254258, 0.9148103},
    {0.19409433, -0.239719898, 0.0991355628, 0.314713508},
    {{0.672644556, -0.475331455, 0.348095089, 0.159117237},
     {-0.278154582, 0.723980606, -0.660935223, 0.42889902},
     {0.185400844, 0.191502526, 0.856100023, -0.607900381}},
    {0.0892035365, -0.15006423, -0.0130261816}};

constexpr const char* kParamsA = R"({"lr": 0.05, "alpha": 0.5, "rst": 0.0, "ap": 0.58, "aug_noise_std": 0.0})";

TEST(Cotta, AugmentedThenTeacherPseudoLabelsMatchOfficialStep) {
  TtaSession s("cotta", kParamsA, model(), 3);
  const TtaStepResult r0 = s.step(mat(kX2));
  EXPECT_EQ(r0.num_used, 4);
  expect_rows_near(r0.logits, kPred0, kTol);
  expect_student(s, kAStep0);
  const TtaStepResult r1 = s.step(mat(kX1));
  EXPECT_EQ(r1.num_used, 4);
  expect_rows_near(r1.logits, kAPred1, kTol);
  expect_student(s, kAStep1);
}

// The threshold on the other side for x1 (0.6059 < 0.62): the second step
// also averages augmented teacher passes.
TEST(Cotta, AugmentationAverageOnBothStepsMatchesOfficial) {
  TtaSession s("cotta", R"({"lr": 0.05, "alpha": 0.5, "rst": 0.0, "ap": 0.62, "aug_noise_std": 0.0})", model(), 3);
  expect_rows_near(s.step(mat(kX2)).logits, kPred0, kTol);
  expect_student(s, kAStep0);
  const Rows pred1 = {{0.385179788, -0.733771324, 1.44146633},
                      {1.25147998, -0.219670787, -0.18710874},
                      {0.848900259, 0.34476158, -0.891282022},
                      {-0.147675291, 0.288312167, 0.0336014442}};
  expect_rows_near(s.step(mat(kX1)).logits, pred1, kTol);
  expect_student(s, {{{0.560237706, -0.20594582, 0.154384419},
                      {-0.462208688, 0.572469115, 0.118336394},
                      {0.217929199, 0.282352507, -0.41882509},
                      {0.0700801909, -0.165628389, 0.445850879}},
                     {0.954768002, 0.731712103, 1.10428941, 0.916872263},
                     {0.193853766, -0.244031489, 0.0618747883, 0.314837962},
                     {{0.664748549, -0.464491904, 0.339113593, 0.169398233},
                      {-0.267905861, 0.715198755, -0.627842546, 0.427436769},
                      {0.179654866, 0.192418173, 0.850615799, -0.599934101}},
                     {0.105105929, -0.150065884, -0.0131142326}});
}

// rst 0.3 with seed 7: the official code's masks drawn after
// torch.manual_seed(8). Restored elements are back at their source values
// (e.g. w1[1][0] = -0.4, gamma[1] = 0.8); the teacher is not restored, so the
// predictions equal those of the run without restore.
TEST(Cotta, FixedRestoreMaskMatchesOfficial) {
  TtaSession s("cotta", R"({"lr": 0.05, "alpha": 0.5, "rst": 0.3, "ap": 0.58, "aug_noise_std": 0.0})", model(), 3,
               {}, 4, /*seed=*/7);
  expect_rows_near(s.step(mat(kX2)).logits, kPred0, kTol);
  expect_student(s, {{{0.549999893, -0.250000358, 0.150000051},
                      {-0.400000006, 0.55000025, 0.149999797},
                      {0.25000003, 0.200000003, -0.450000107},
                      {0.100000001, -0.150000334, 0.44999972}},
                     {1, 0.800000012, 1.20000005, 0.949998498},
                     {0.149999738, -0.200000003, 0.0499999374, 0.300000012},
                     {{0.699999988, -0.450000376, 0.300000012, 0.15000008},
                      {-0.250000209, 0.800000012, -0.649999917, 0.449999928},
                      {0.150002226, 0.149999946, 0.899999976, -0.650000632}},
                     {0.0500000007, -0.0999999046, -0.0499945283}});
  expect_rows_near(s.step(mat(kX1)).logits, kAPred1, kTol);
  expect_student(s, {{{0.571630359, -0.209849522, 0.138450325},
                      {-0.400000006, 0.518687069, 0.197964847},
                      {0.228433385, 0.229078144, -0.5},
                      {0.0639528781, -0.118997149, 0.484064639}},
                     {0.958523035, 0.800000012, 1.15666306, 0.919818103},
                     {0.200057805, -0.248275727, 0.0543189198, 0.271000385},
                     {{0.653230011, -0.402149558, 0.346639961, 0.200000003},
                      {-0.300000012, 0.761560977, -0.600000024, 0.400000006},
                      {0.200000003, 0.177441031, 0.899999976, -0.600112379}},
                     {0.0989391953, -0.149347693, 0}});
}

// By hand: rst 1 puts every adapted element back at its source value after
// each step, while the teacher keeps the EMA of the stepped student.
TEST(Cotta, FullRestoreKeepsTheStudentAtTheSource) {
  TtaSession s("cotta", R"({"lr": 0.05, "alpha": 0.5, "rst": 1.0, "ap": 0.58, "aug_noise_std": 0.0})", model(), 3);
  expect_rows_near(s.step(mat(kX2)).logits, kPred0, kTol);
  expect_student(s, {kW1, kGamma, kBeta, kW2, kB2});
  const torch::Tensor second = s.step(mat(kX1)).logits;
  expect_student(s, {kW1, kGamma, kBeta, kW2, kB2});
  // The teacher moved: its logits on x1 are not the source model's.
  torch::NoGradGuard no_grad;
  const torch::Tensor source_logits = model()->forward(mat(kX1));
  EXPECT_GT((second - source_logits).abs().max().item<double>(), 1e-3);
}

// reset() restores the source weights and calls tta_setup again: the teacher,
// the anchor, Adam's moments and both random streams start over.
TEST(Cotta, ResetStartsOverFromTheSource) {
  TtaSession s("cotta", R"({"lr": 0.05, "alpha": 0.5, "rst": 0.3, "ap": 0.58, "aug_noise_std": 0.0})", model(), 3,
               {}, 4, 7);
  s.step(mat(kX2));
  s.step(mat(kX1));
  s.reset();
  expect_student(s, {kW1, kGamma, kBeta, kW2, kB2});
  TtaSession fresh("cotta", R"({"lr": 0.05, "alpha": 0.5, "rst": 0.3, "ap": 0.58, "aug_noise_std": 0.0})", model(), 3,
                   {}, 4, 7);
  for (const Rows* x : {&kX2, &kX1}) {
    const torch::Tensor a = s.step(mat(*x)).logits, b = fresh.step(mat(*x)).logits;
    EXPECT_TRUE(torch::equal(a, b));
    for (const auto& p : fresh.model()->named_parameters())
      EXPECT_TRUE(torch::equal(param(s, p.key()), p.value())) << p.key();
  }
}

// Images through the plugin: the augmented passes draw from the seeded
// stream, so the same seed gives the same pseudo-labels and another seed
// other ones.
torch::nn::Sequential image_model() {
  torch::manual_seed(11);
  return torch::nn::Sequential(torch::nn::Flatten(), torch::nn::Linear(16, 4), torch::nn::BatchNorm1d(4),
                               torch::nn::ReLU(), torch::nn::Linear(4, 3));
}

TEST(Cotta, ImageAugmentationsAreSeeded) {
  const torch::Tensor x = torch::rand({6, 1, 4, 4}, cotta::make_generator(3));
  const std::string params = R"({"ap": 1.0, "num_aug": 4})";
  TtaSession a("cotta", params, image_model(), 3, {}, 6, 5);
  TtaSession b("cotta", params, image_model(), 3, {}, 6, 5);
  TtaSession c("cotta", params, image_model(), 3, {}, 6, 6);
  const torch::Tensor pa = a.step(x).logits, pb = b.step(x).logits, pc = c.step(x).logits;
  EXPECT_EQ(pa.sizes().vec(), (std::vector<std::int64_t>{6, 3}));
  EXPECT_TRUE(torch::equal(pa, pb));
  EXPECT_FALSE(torch::allclose(pa, pc));
}

TEST(Cotta, RejectsBadParameters) {
  EXPECT_THROW(TtaSession("cotta", R"({"rst": 1.5})", model(), 3), std::invalid_argument);
  EXPECT_THROW(TtaSession("cotta", R"({"ap": -0.1})", model(), 3), std::invalid_argument);
  EXPECT_THROW(TtaSession("cotta", R"({"alpha": 2})", model(), 3), std::invalid_argument);
  EXPECT_THROW(TtaSession("cotta", R"({"num_aug": 0})", model(), 3), std::invalid_argument);
  EXPECT_THROW(TtaSession("cotta", R"({"aug_flip": 1.5})", model(), 3), std::invalid_argument);
  try {
    TtaSession("cotta", R"({"aug_scale_min": 1.2, "aug_scale_max": 1.0})", model(), 3);
    ADD_FAILURE() << "aug_scale_min > aug_scale_max was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("aug_scale_min"), std::string::npos) << e.what();
  }
}

// --- the augmentations themselves -------------------------------------------

using cotta::AffineDraw;
using cotta::AugmentOptions;

// v[r][c] = 10 r + c on a 3×4 image.
torch::Tensor ramp() {
  return (torch::arange(3, torch::kFloat).view({3, 1}) * 10 + torch::arange(4, torch::kFloat).view({1, 4}))
      .view({1, 1, 3, 4});
}

TEST(CottaAugment, PureTranslationShiftsByWholePixels) {
  const torch::Tensor right = cotta::affine_image(ramp(), AffineDraw{.tx = 1});
  expect_rows_near(right[0][0], {{0, 0, 1, 2}, {10, 10, 11, 12}, {20, 20, 21, 22}}, 1e-4);
  const torch::Tensor down = cotta::affine_image(ramp(), AffineDraw{.ty = 1});
  expect_rows_near(down[0][0], {{0, 1, 2, 3}, {0, 1, 2, 3}, {10, 11, 12, 13}}, 1e-4);
  const torch::Tensor left_up = cotta::affine_image(ramp(), AffineDraw{.tx = -2, .ty = -1});
  expect_rows_near(left_up[0][0], {{12, 13, 13, 13}, {22, 23, 23, 23}, {22, 23, 23, 23}}, 1e-4);
}

TEST(CottaAugment, QuarterTurnAndFlipByHand) {
  const torch::Tensor sq = (torch::arange(3, torch::kFloat).view({3, 1}) * 10 + torch::arange(3, torch::kFloat))
                               .view({1, 1, 3, 3});
  // Counter-clockwise as displayed: the top row becomes the left column.
  expect_rows_near(cotta::affine_image(sq, AffineDraw{.angle_deg = 90})[0][0],
                   {{2, 12, 22}, {1, 11, 21}, {0, 10, 20}}, 1e-4);
  expect_rows_near(cotta::affine_image(ramp(), AffineDraw{.flip = true})[0][0],
                   {{3, 2, 1, 0}, {13, 12, 11, 10}, {23, 22, 21, 20}}, 0);
  // Zoom 2 about the centre (1.5) of a 4-wide image: output column q samples
  // input column 1.5 + (q − 1.5)/2, i.e. 0.75, 1.25, 1.75, 2.25.
  const torch::Tensor row = torch::arange(4, torch::kFloat).view({1, 1, 1, 4}).expand({1, 1, 4, 4}).contiguous();
  expect_rows_near(cotta::affine_image(row, AffineDraw{.scale = 2})[0][0].slice(0, 0, 1), {{0.75, 1.25, 1.75, 2.25}},
                   1e-4);
}

TEST(CottaAugment, DeterministicGivenTheSeedAndShapePreserving) {
  const torch::Tensor x = torch::rand({2, 3, 8, 8}, cotta::make_generator(1));
  const AugmentOptions o;
  at::Generator g1 = cotta::make_generator(5), g2 = cotta::make_generator(5), g3 = cotta::make_generator(6);
  const torch::Tensor a = cotta::augment(x, o, g1), b = cotta::augment(x, o, g2), c = cotta::augment(x, o, g3);
  EXPECT_EQ(a.sizes(), x.sizes());
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
  // The stream advances: a second draw differs from the first.
  EXPECT_FALSE(torch::equal(cotta::augment(x, o, g1), a));
  // Clipped to [0, 1] even from inputs outside it.
  const torch::Tensor wide = cotta::augment(x * 3 - 1, o, g1);
  EXPECT_GE(wide.min().item<double>(), 0.0);
  EXPECT_LE(wide.max().item<double>(), 1.0);
}

TEST(CottaAugment, NoiseHasTheConfiguredScale) {
  AugmentOptions o;
  o.max_rotation_deg = 0;
  o.max_translate = 0;
  o.min_scale = o.max_scale = 1;
  o.flip_probability = 0;
  o.noise_std = 0.1;
  o.clip = false;
  const torch::Tensor x = torch::full({1, 1, 64, 64}, 0.5);
  at::Generator g = cotta::make_generator(2);
  const torch::Tensor d = cotta::augment(x, o, g) - x;
  EXPECT_NEAR(d.std().item<double>(), 0.1, 0.005);
  EXPECT_NEAR(d.mean().item<double>(), 0.0, 0.01);
  // Feature vectors [B, D] get the noise only (no geometry), same shape.
  const torch::Tensor v = torch::full({8, 512}, 0.5);
  const torch::Tensor dv = cotta::augment(v, o, g) - v;
  EXPECT_EQ(dv.sizes(), v.sizes());
  EXPECT_NEAR(dv.std().item<double>(), 0.1, 0.005);
  // Noise 0 with the clip: exactly clamp(x, 0, 1).
  AugmentOptions clip_only;
  clip_only.noise_std = 0;
  const torch::Tensor xv = mat(kX1);
  EXPECT_TRUE(torch::equal(cotta::augment(xv, clip_only, g), xv.clamp(0.0, 1.0)));
}

}  // namespace
}  // namespace reglab::testing

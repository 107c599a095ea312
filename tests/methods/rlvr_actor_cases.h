// Shared inputs and golden numbers for the actor loss of the rlvr plugins
// grpo, ttrl and evol_rl (reglab/actor_loss.h), and the helpers that
// run one policy_loss through a loaded plugin.
//
// How the numbers were obtained: the official actors' update_policy were
// loaded on their own from their files (source as is, decorators dropped)
// and run with Debian's /usr/bin/python3 and python3-torch 1.13 in float64:
//   - fork: YujunZhou/EVOL-RL @ 19896e0, verl/verl/workers/actor/dp_actor.py
//     (DataParallelPPOActor.update_policy) with compute_policy_loss, agg_loss
//     and kl_penalty from verl/verl/trainer/ppo/core_algos.py and
//     logprobs_from_logits / entropy_from_logits / masked_mean from
//     verl/verl/utils/torch_functional.py (flash-attn absent, so the
//     logsumexp path);
//   - TTRL: PRIME-RL/TTRL @ 3e2cc93, the same files of its verl copy (the
//     loss code is identical; its run gave the kGrpoDefault numbers bit for bit);
//   - b178a3c: volcengine/verl @ b178a3c, verl/workers/actor/dp_actor.py
//     with compute_policy_loss_vanilla, agg_loss, kl_penalty(_forward) and
//     its torch_functional.py.
// The actor ran on one mini-batch = one micro-batch (gradient accumulation
// 1), one PPO epoch, temperature 1, use_kl_loss with kl_loss_type
// low_var_kl; the model forward was replaced by the fixed logits below (a
// leaf requiring grad), the batch by a stand-in with the test's tensors
// (b178a3c with use_rollout_log_probs so the given old log-probs are used).
// The loss is the tensor the actor called backward() on; the gradients are
// those that backward() left on the logits and (retained) on the log-probs;
// the clip fraction is the actor's logged pg_clipfrac. pg_loss, kl and
// entropy are the same versions' compute_policy_loss(_vanilla),
// agg_loss(kl_penalty(...)) and agg_loss(entropy_from_logits(...)) called
// directly on the same tensors (and equal to the actor's logged values where
// it logs them).
//
// Inputs: B = 3 responses, T = 4 positions, V = 5; rows of 4, 3 and 2
// tokens; A = (1.2, −0.8, −1.5). Ratios ρ = exp(lp − old) per token:
// row 0 (A > 0): 1.649 (above 1 + ε), 0.607 (below 1 − ε: unclipped
// term larger, gradient flows), 1.105, 1.246 (clipped at ε_high 0.2, not
// at 0.28); row 1 (A < 0): 4.48 (dual clip binds at c = 3), 2.01, 0.497
// (clipped); row 2 (A < 0): 3.32 (dual clip), 0.905. ref − lp: 0.3, −0.4,
// 3.0 (k3 = 16.1, clamped to 10: no gradient), …
#pragma once

#include <gtest/gtest.h>

#include <torch/types.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "methods/method_harness.h"
#include "reglab/method.h"

namespace reglab::testing::rlvr_cases {

struct Golden {
  double loss;
  double clip_fraction;
  double pg_loss;
  double kl;
  double entropy;
  std::vector<double> grad_log_prob;  // [B, T] flattened
  std::vector<double> grad_logits;    // [B, T, V] flattened
};

// Masks and advantages (0 at padding, as the paradigm gives them).
inline const std::vector<double> kMask = {1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0};
inline const std::vector<double> kAdvantages = {1.2, 1.2, 1.2, 1.2, -0.8, -0.8, -0.8, 0, -1.5, -1.5, 0, 0};

inline const std::vector<double> kLogits = {
    0.10, 0.07, 2.75, 2.05, 1.68, 2.79, 0.90, 1.11, -1.21, -1.20, 1.15, 0.78, 2.95, 0.67, 0.87, -1.57, 0.19,
    -0.44, 0.69, 2.54, 2.19, 2.90, -2.16, 1.09, -0.15, -3.64, -0.23, -4.04, 2.61, -0.79, -0.43, 0.68, -1.90,
    1.93, -0.84, -0.51, 0.17, 0.24, 0.86, -0.85, 1.01, -1.41, 1.09, 0.07, -2.65, -0.87, -1.52, -1.84, -0.48,
    0.38, -0.38, 1.63, -0.42, 1.86, 2.26, -0.17, 2.07, 1.79, 1.10, -0.31};
inline const std::vector<std::int64_t> kTokens = {
    3, 0, 4, 1, 2, 2, 0, 3, 1, 4, 3, 0};
inline const std::vector<double> kOld = {
    -1.8825, 0.1821, -2.5899, -2.8475, -7.0959, -7.4408, -2.0421, 0.0, -4.5711, -0.5769, 0.0, 0.0};
inline const std::vector<double> kRef = {
    -1.0825, -0.7179, 0.5101, -2.5775, -6.5959, -6.5408, -2.1421, 0.0, -2.5711, -0.9269, 0.0, 0.0};
inline const Golden kGrpoDefault = {
    0.6206025191612754, 0.33333333296296291, 0.61935950404643147, 1.2430151148438711, 0.98326123416066769,
    {
        -3.887241164903714e-05, -0.080832811923651937, -0.1473537932898567, -5.6950908053387042e-06,
        7.0235206640138575e-05, 0.17897998533049783, -9.1337970896082643e-05, 0, -0.0001361725064764681,
        0.15082495393935214, 0, 0},
    {
        1.3878975504821573e-06, 1.3468789788883243e-06, 1.9644355565346863e-05, -2.9117313372832901e-05,
        6.7381812781155473e-06, -0.022013705645136702, 0.0088859087796340341, 0.010962350704211508,
        0.0010773095103553626, 0.0010881366509357968, 0.016166167737062948, 0.011166527050831376,
        0.097799615659797251, 0.010003356104846815, -0.13513566655253842, 7.0801087058082238e-08,
        -5.2835639193579542e-06, 2.1917584536724794e-07, 6.7849313038144965e-07, 4.3150938565511738e-06,
        -2.0205193013735085e-05, -4.1097185969207559e-05, 6.997442200075787e-05, -6.7257244948108629e-06,
        -1.9463185230043587e-06, -0.00031552992305400318, -0.0095495901923791197, 0.17876847929795064,
        -0.16344854670858877, -0.0054548124739287008, -8.5452369741777432e-05, 1.7859023268866319e-05,
        1.3532497010191669e-06, 6.2334116093634695e-05, 3.9059806782572633e-06, 0, 0, 0, 0, 0,
        5.2605321600065523e-05, -0.00013149475619281909, 5.698666458023315e-05, 2.0549102904972452e-05,
        1.3536671075479446e-06, -0.021959087943822151, -0.011463649122596098, -0.0083243177717238163,
        -0.032433151144205204, 0.074180205982347286, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}};
inline const Golden kEvolDefault = {
    0.60084008998312632, 0.22222222197530861, 0.6025468585707644, 1.2430151148438711, 0.98326123416066769,
    {
        -3.887241164903714e-05, -0.080832811923651937, -0.1473537932898567, -0.16615167373387973,
        7.0235206640138575e-05, 0.17897998533049783, -9.1337970896082643e-05, 0, -0.0001361725064764681,
        0.15082495393935214, 0, 0},
    {
        -2.3621331440972056e-05, -2.3269702708580236e-05, 0.00011205940487775497, -4.1780757576654827e-05,
        -2.3387613151547688e-05, -0.02188208911968649, 0.0088365367554584188, 0.01091093475211726,
        0.0010619499827227753, 0.0010726676293880328, 0.016125544728383311, 0.011129121096763358,
        0.09795208445498127, 0.0099673573969878797, -0.13517410767711585, 0.0020508616437307451,
        -0.15418877633051986, 0.0063632592131581435, 0.019743339489814229, 0.12603131598381676,
        -4.2175671816769006e-05, 5.2697367081464327e-05, 6.4306975962571844e-05, -4.9151067323227231e-05,
        -2.5677603904039872e-05, -0.00031904167054924552, -0.0095952265200498314, 0.17876596773919737,
        -0.16336513010951381, -0.005486569439084414, -0.00012386401096462553, -2.6350738288947586e-05,
        -1.4738332169575874e-05, 0.00019238341489995604, -2.7430333476807058e-05, 0, 0, 0, 0, 0,
        8.1950485641047165e-05, -0.00015659566772005689, 9.9935601773657649e-05, -1.527140466720039e-05,
        -1.0019015027447487e-05, -0.021988989752193263, -0.011495727270507171, -0.0083534984253459052,
        -0.032449360553756253, 0.074287576001802608, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}};
inline const Golden kSeqMeanTokenSum = {
    2.0150329445799802, 0.33333333296296291, 1.8580785142038259, 3.7290453486749975, 2.9497837057595411,
    {
        -0.0058308617538343072, -0.23711384118212586, -0.44206138036074943, -0.00085426362174998924,
        0.010535281007726653, 0.53332419542897158, -0.013700695649635393, 0, -0.020425875994165631,
        0.45608728884736222, 0, 0},
    {
        -4.1907657388782669e-05, -4.4133970090474658e-05, 0.0038708038322270038, -0.0044942314529567455,
        0.00070946924820899893, -0.06325853133013426, 0.025572080426897226, 0.031642646879286487,
        0.0030065693900953889, 0.0030372346338551378, 0.04809227317782834, 0.033125521648620079,
        0.29492353525892478, 0.029650081268895626, -0.40579141135426894, -0.00013665725463154476,
        -0.0012246504123825518, -0.00027808356956217378, -0.00041210376296673328, 0.0020514949995430044,
        -0.003250483743702251, -0.005226632370681784, 0.010439488851331252, -0.0014331121040981399,
        -0.00052926063284907635, -0.00097533289648565273, -0.028912212665191252, 0.53266883459679137,
        -0.4862094802932751, -0.016571808741839236, -0.013201971888163955, 0.0022367558772370933,
        4.2071636493670863e-05, 0.01065061041394243, 0.00027253396049076184, 0, 0, 0, 0, 0,
        0.0081842498895132558, -0.019975222566389929, 0.0089774890689442045, 0.002724160363050984,
        8.9323244881485381e-05, -0.066702226732698766, -0.034986296117878297, -0.025464136610891294,
        -0.098238357921936414, 0.22539101738340481, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}};
inline const Golden kSeqMeanTokenMean = {
    0.77523647411924057, 0.22222222197530861, 0.73597921457699567, 0.98710503401963623, 1.0097992158736941,
    {
        -0.0014577154384585768, -0.059278460295531465, -0.11051534509018736, -0.1248230500261983,
        0.0035117603359088845, -0.0012298507343951872, -0.0045668985498784646, 0, -0.010212937997082816,
        0.22804364442368111, 0, 0},
    {
        -1.0476914347195667e-05, -1.1033492522618664e-05, 0.00096770095805675095, -0.0011235578632391864,
        0.00017736731205224973, -0.015814632832533565, 0.0063930201067243066, 0.0079106617198216218,
        0.00075164234752384722, 0.00075930865846378446, 0.012023068294457085, 0.0082813804121550198,
        0.073730883814731196, 0.0074125203172239066, -0.10144785283856723, 0.0015149746263615261,
        -0.11591137361976242, 0.0047260811368768571, 0.014742510653171201, 0.094927807203352824,
        -0.0010834945812340836, -0.0017422107902272616, 0.0034798296171104177, -0.00047770403469938,
        -0.00017642021094969212, -9.5376791741660246e-06, -8.6501629482191555e-05, -0.0012367692453075839,
        0.0014011826726143589, -6.8374118650417378e-05, -0.0044006572960546518, 0.0007455852924123645,
        1.4023878831223626e-05, 0.0035502034713141436, 9.0844653496920599e-05, 0, 0, 0, 0, 0,
        0.0040921249447566279, -0.0099876112831949644, 0.0044887445344721022, 0.001362080181525492,
        4.4661622440742691e-05, -0.033351113366349383, -0.017493148058939149, -0.012732068305445647,
        -0.049119178960968207, 0.1126955086917024, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}};
inline const Golden kNoKl = {
    0.61935950404643147, 0.33333333296296291, 0.61935950404643147, 1.2430151148438711, 0.98326123416066769,
    {
        0, -0.080869441820606291, -0.1473537932898567, 0, 0, 0.1790045823451584, 0, 0, 0, 0.15080037960926682,
        0, 0},
    {
        0, 0, 0, 0, 0, -0.022023681294259564, 0.0088899354850671096, 0.010967318362358203, 0.001077797699933495,
        0.0010886297469007583, 0.016166167737062948, 0.011166527050831376, 0.097799615659797251,
        0.010003356104846815, -0.13513566655253842, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -0.00031557328597041459,
        -0.0095509025816361108, 0.1787930472455791, -0.16347100925540492, -0.0054555621225675921, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -0.021955510088424821, -0.01146178131829606, -0.0083229614674299023,
        -0.032427866720500055, 0.074168119594650847, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}};
inline const Golden kB178Evol = {
    0.60084009065072652, 0.22222222197530861, 0.60254685924026097, 1.2430151162249992, 0.98326123525318032,
    {
        -3.8872411692228719e-05, -0.080832812013466177, -0.14735379345358315, -0.16615167391849273,
        7.0235206718177685e-05, 0.17897998552936448, -9.1337970997569306e-05, 0, -0.0001361725066277709,
        0.15082495410693544, 0, 0},
    {
        -2.3621331467217978e-05, -2.3269702734435462e-05, 0.00011205940500226544, -4.1780757623077904e-05,
        -2.3387613177533933e-05, -0.021882089143999923, 0.0088365367652767941, 0.010910934764240522,
        0.0010619499839027197, 0.0010726676305798859, 0.016125544746300586, 0.01112912110912905,
        0.097952084563816932, 0.0099673574080627221, -0.13517410782730932, 0.0020508616460094809,
        -0.15418877650184076, 0.0063632592202284323, 0.019743339511751279, 0.12603131612385154,
        -4.2175671863630833e-05, 5.2697367140016983e-05, 6.4306976034024033e-05, -4.9151067377839525e-05,
        -2.5677603932570543e-05, -0.00031904167090373621, -0.0095952265307111921, 0.1787659679378262,
        -0.16336513029103064, -0.0054865694451806018, -0.00012386401110225226, -2.6350738318226201e-05,
        -1.4738332185951799e-05, 0.00019238341511371539, -2.7430333507285201e-05, 0, 0, 0, 0, 0,
        8.1950485732103248e-05, -0.00015659566789405206, 9.9935601884697191e-05, -1.5271404684168625e-05,
        -1.0019015038579728e-05, -0.021988989776625476, -0.011495727283280206, -0.0083534984346275709,
        -0.032449360589811099, 0.074287576084344359, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}};
inline const Golden kB178EvolPaddingGarbage = {
    0.60084009065072652, 0.22222222197530861, 0.60254685924026097, 1.2430151162249992, 0.98326123525318032,
    {
        -3.8872411692228719e-05, -0.080832812013466177, -0.14735379345358315, -0.16615167391849273,
        7.0235206718177685e-05, 0.17897998552936448, -9.1337970997569306e-05, 0, -0.0001361725066277709,
        0.15082495410693544, 0, 0},
    {
        -2.3621331467217978e-05, -2.3269702734435462e-05, 0.00011205940500226544, -4.1780757623077904e-05,
        -2.3387613177533933e-05, -0.021882089143999923, 0.0088365367652767941, 0.010910934764240522,
        0.0010619499839027197, 0.0010726676305798859, 0.016125544746300586, 0.01112912110912905,
        0.097952084563816932, 0.0099673574080627221, -0.13517410782730932, 0.0020508616460094809,
        -0.15418877650184076, 0.0063632592202284323, 0.019743339511751279, 0.12603131612385154,
        -4.2175671863630833e-05, 5.2697367140016983e-05, 6.4306976034024033e-05, -4.9151067377839525e-05,
        -2.5677603932570543e-05, -0.00031904167090373621, -0.0095952265307111921, 0.1787659679378262,
        -0.16336513029103064, -0.0054865694451806018, -0.00012386401110225226, -2.6350738318226201e-05,
        -1.4738332185951799e-05, 0.00019238341511371539, -2.7430333507285201e-05, 0, 0, 0, 0, 0,
        8.1950485732103248e-05, -0.00015659566789405206, 9.9935601884697191e-05, -1.5271404684168625e-05,
        -1.0019015038579728e-05, -0.021988989776625476, -0.011495727283280206, -0.0083534984346275709,
        -0.032449360589811099, 0.074287576084344359, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}};

// Keeps every metric a method records, in order, and the directions it declares.
class CollectingSink final : public MetricSink {
 public:
  void record(std::string_view key, double value, std::int64_t step) override {
    points[std::string(key)].emplace_back(step, value);
  }
  void declare(std::string_view key, MetricDirection direction) override {
    directions[std::string(key)] = direction;
  }
  std::map<std::string, std::vector<std::pair<std::int64_t, double>>> points;
  std::map<std::string, MetricDirection> directions;
};

// One mini-batch built from the inputs above: log_prob = log_softmax(logits)
// at the sampled tokens, so gradients reach the logits through it.
struct LossRun {
  torch::Tensor loss;
  double clip_fraction;
  torch::Tensor grad_log_prob;
  torch::Tensor grad_logits;
};

inline torch::Tensor tensor_of(const std::vector<double>& v, std::vector<std::int64_t> shape) {
  return torch::tensor(v, torch::kDouble).reshape(shape);
}

inline LossRun run_policy_loss(plugins::MethodHandle& handle, const StepContext& step,
                               const std::vector<double>& old_log_prob = kOld) {
  const torch::Tensor logits = tensor_of(kLogits, {3, 4, 5}).requires_grad_(true);
  const torch::Tensor tokens = torch::tensor(kTokens, torch::kLong).reshape({3, 4});
  torch::Tensor log_prob = logits.log_softmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
  log_prob.retain_grad();
  RlvrBatch batch;
  batch.log_prob = log_prob;
  batch.logits = logits;
  batch.old_log_prob = tensor_of(old_log_prob, {3, 4});
  batch.ref_log_prob = tensor_of(kRef, {3, 4});
  batch.advantages = tensor_of(kAdvantages, {3, 4});
  batch.response_mask = tensor_of(kMask, {3, 4});
  batch.rows = torch::arange(3, torch::kLong);
  const RlvrLoss out = handle.policy_loss(batch, step);
  out.loss.backward();
  return {out.loss.detach(), out.clip_fraction, log_prob.grad(), logits.grad()};
}

inline void expect_values(const torch::Tensor& t, const std::vector<double>& expected, double tol,
                          const char* what) {
  ASSERT_TRUE(t.defined()) << what;
  const torch::Tensor flat = t.detach().to(torch::kDouble).contiguous().view(-1);
  ASSERT_EQ(flat.numel(), static_cast<std::int64_t>(expected.size())) << what;
  for (std::size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR(flat[static_cast<std::int64_t>(i)].item<double>(), expected[i], tol) << what << " at " << i;
}

// The loss, the clip fraction and both gradients against a golden case.
inline void expect_golden(const LossRun& r, const Golden& g, double tol = 1e-13) {
  EXPECT_NEAR(r.loss.item<double>(), g.loss, tol);
  EXPECT_NEAR(r.clip_fraction, g.clip_fraction, tol);
  expect_values(r.grad_log_prob, g.grad_log_prob, tol, "d loss / d log_prob");
  expect_values(r.grad_logits, g.grad_logits, tol, "d loss / d logits");
}

// The last value recorded under `key` at `epoch` (the one the store keeps).
inline double last_metric(const CollectingSink& sink, const std::string& key, std::int64_t epoch) {
  const auto it = sink.points.find(key);
  if (it == sink.points.end()) return std::nan("");
  double v = std::nan("");
  for (const auto& [e, value] : it->second)
    if (e == epoch) v = value;
  return v;
}

}  // namespace reglab::testing::rlvr_cases

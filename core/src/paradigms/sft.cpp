#include "paradigms/sft.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>

#include "data/arith.h"
#include "paradigms/checkpoint.h"
#include "paradigms/device.h"
#include "paradigms/optim.h"
#include "paradigms/policy_task.h"
#include "plugins/loader.h"
#include "plugins/method_handle.h"
#include "util/util.h"

namespace reglab::paradigms {

namespace arith = data::arith;
using config::Json;

namespace {

void record_eval(runner::MetricRecorder& metrics, const std::string& prefix,
                 const std::map<std::string, double>& scores, std::int64_t step) {
  for (const auto& [name, value] : scores) metrics.record_core(prefix + name, value, step);
}

}  // namespace

void run_sft(runner::TrialEnv& env) {
  const Json& cfg = env.config;
  const Json& task_cfg = cfg.at("task");
  const auto seed = static_cast<std::uint64_t>(cfg.value("seed", std::int64_t{0}));
  const std::int64_t epochs = task_cfg.value("epochs", std::int64_t{10});
  const std::int64_t batch_size = task_cfg.value("batch_size", std::int64_t{128});
  const std::int64_t checkpoint_every = task_cfg.value("checkpoint_every", std::int64_t{1});
  const torch::Device device = trial_device(task_cfg);

  const PolicyTask task = policy_task_from(cfg.at("arith"));
  const models::PolicyOptions popts = policy_options_from(cfg.at("policy"));
  const std::int64_t examples = cfg.at("sft").value("examples", std::int64_t{20000});
  const std::vector<arith::Problem> train = arith::generate_pool(task.in_domain, arith::Pool::train, examples, seed);
  std::vector<TokenRow> rows;
  rows.reserve(train.size());
  for (const arith::Problem& p : train) rows.push_back({arith::prompt_tokens(p), arith::response_tokens(p)});
  const EvalSets evals = eval_sets(task, /*seed=*/0);
  env.log.info("sft: " + std::to_string(rows.size()) + " worked examples, " + std::to_string(evals.in_domain.size()) +
               " + " + std::to_string(evals.out_of_domain.size()) + " evaluation prompts");

  torch::manual_seed(seed);
  models::Policy policy(popts);
  policy->to(device);
  const OptimOptions oo = optim_options_from(cfg.at("optim"));
  std::unique_ptr<torch::optim::Optimizer> optimizer = make_optimizer(oo, policy->parameters());

  const Json& method_cfg = cfg.at("method");
  const std::string method_name = method_cfg.at("name").get<std::string>();
  const plugins::LoadedPlugin& plugin = plugins::registry().get(method_name);
  env.method_version(method_name, plugin.info->version);
  const Params params = plugins::resolve_params(*plugin.info, method_cfg.dump());
  plugins::MethodHandle method(plugin);
  method.setup(MethodContext{params, env.log, env.metrics, kSft, static_cast<std::int64_t>(rows.size()),
                             arith::kVocabSize, epochs, device, torch::kFloat});

  const std::filesystem::path ckpt = env.run_dir / "checkpoint.pt";
  const LoopPosition resumed = resume_or_restart(ckpt, *policy, *optimizer, method, env.log, [&] {
    torch::manual_seed(seed);
    policy = models::Policy(popts);
    policy->to(device);
    optimizer = make_optimizer(oo, policy->parameters());
  });
  std::int64_t step = resumed.step;
  const auto n = static_cast<std::int64_t>(rows.size());
  bool first_step_recorded = false;
  EvalOptions eo;
  eo.samples = 1;
  eo.max_new_tokens = task.max_response_tokens();
  eo.seed = seed;

  for (std::int64_t epoch = resumed.next_epoch; epoch < epochs; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    const double lr = lr_at_epoch(oo, epoch, epochs);
    set_lr(*optimizer, lr);
    StepContext sctx{epoch, epochs, step, env.log, env.metrics};
    // The order depends only on (seed, epoch): a resumed stage sees the same batches.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed * 1000003ULL + static_cast<std::uint64_t>(epoch));
    const torch::Tensor order = torch::randperm(n, gen, torch::kLong);
    const auto* ord = order.data_ptr<std::int64_t>();
    double loss_sum = 0;
    std::int64_t steps_this_epoch = 0;
    policy->train();
    for (std::int64_t i = 0; i < n; i += batch_size) {
      if (env.interrupted()) throw runner::Interrupted();
      std::vector<TokenRow> batch_rows;
      for (std::int64_t j = i; j < std::min(n, i + batch_size); ++j)
        batch_rows.push_back(rows[static_cast<std::size_t>(ord[j])]);
      const PackedRows packed = pack_rows(batch_rows, device);
      const torch::Tensor logits =
          response_logits(policy->forward(packed.tokens, packed.attention_mask).logits, packed);
      const torch::Tensor keep = packed.response_mask.to(torch::kBool);
      Outputs outputs;
      outputs.set("logits", logits.index({keep}));
      const torch::Tensor targets = packed.response.index({keep});
      const Batch batch{torch::Tensor(), targets,
                        torch::arange(targets.size(0), torch::TensorOptions().dtype(torch::kLong).device(device))};
      sctx.step = step;
      torch::Tensor loss = method.training_loss(batch, outputs, sctx);
      const double value = loss.item<double>();
      if (!std::isfinite(value))
        throw std::runtime_error("loss is " + std::to_string(value) + " at epoch " + std::to_string(epoch + 1) +
                                 ", step " + std::to_string(step));
      optimizer->zero_grad();
      loss.backward();
      optimizer->step();
      method.after_optimizer_step(batch, outputs, sctx);
      if (!first_step_recorded) {
        first_step_recorded = true;
        if (env.spawned_at > 0) env.metrics.record_core("time.startup_s", util::now_seconds() - env.spawned_at, 0);
      }
      loss_sum += value;
      ++steps_this_epoch;
      ++step;
    }
    sctx.step = step;
    method.on_epoch_end(sctx);
    const std::int64_t e1 = epoch + 1;
    const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto id = evaluate_policy(policy, evals.in_domain, eo);
    const auto ood = evaluate_policy(policy, evals.out_of_domain, eo);
    auto& m = env.metrics;
    const double mean_loss = steps_this_epoch ? loss_sum / static_cast<double>(steps_this_epoch) : std::nan("");
    m.record_core("sft.loss", mean_loss, e1);
    record_eval(m, "eval.id.", id, e1);
    record_eval(m, "eval.ood.", ood, e1);
    m.record_core("lr", lr, e1);
    m.record_core("time.train_s", train_s, e1);
    m.record_core("time.epoch_s", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), e1);
    m.flush();
    if (checkpoint_every > 0 && (e1 % checkpoint_every == 0 || e1 == epochs)) {
      save_checkpoint(ckpt, *policy, *optimizer, method.state_dict(), {e1, step});
      env.artifact("checkpoint", ckpt);
    }
    env.heartbeat();
    env.log.info("epoch " + std::to_string(e1) + "/" + std::to_string(epochs) + " sft.loss " +
                 std::to_string(mean_loss) + " eval.id.greedy_acc " + std::to_string(id.at("greedy_acc")) +
                 " eval.ood.greedy_acc " + std::to_string(ood.at("greedy_acc")) + " (" + std::to_string(train_s) +
                 " s training)");
    env.report(
        Json{{"epoch", e1}, {"epochs", epochs}, {"metric", "eval.id.greedy_acc"}, {"value", id.at("greedy_acc")}});
  }
}

}  // namespace reglab::paradigms

#include "paradigms/optim.h"

#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include <cmath>
#include <stdexcept>

namespace reglab::paradigms {

OptimOptions optim_options_from(const config::Json& t) {
  OptimOptions o;
  o.name = t.value("name", o.name);
  o.lr = t.value("lr", o.lr);
  o.momentum = t.value("momentum", o.momentum);
  o.nesterov = t.value("nesterov", o.nesterov);
  o.weight_decay = t.value("weight_decay", o.weight_decay);
  o.betas = t.value("betas", o.betas);
  o.eps = t.value("eps", o.eps);
  o.schedule = t.value("schedule", o.schedule);
  o.milestones = t.value("milestones", o.milestones);
  o.gamma = t.value("gamma", o.gamma);
  o.t0 = t.value("t0", o.t0);
  o.t_mult = t.value("t_mult", o.t_mult);
  o.eta_min = t.value("eta_min", o.eta_min);
  return o;
}

namespace {

// Builds optimizer Opt with `defaults` over `groups`, each group with its own
// copy of the defaults and its weight decay.
template <class Opt, class Options>
std::unique_ptr<torch::optim::Optimizer> grouped(const Options& defaults, const std::vector<ParamGroup>& groups) {
  std::vector<torch::optim::OptimizerParamGroup> torch_groups;
  for (const ParamGroup& g : groups) {
    if (g.params.empty()) continue;
    auto options = std::make_unique<Options>(defaults);
    options->weight_decay(g.weight_decay);
    torch_groups.emplace_back(g.params, std::move(options));
  }
  return std::make_unique<Opt>(torch_groups, defaults);
}

}  // namespace

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimOptions& o,
                                                        const std::vector<torch::Tensor>& params) {
  if (o.name == "sgd") {
    return std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(o.lr).momentum(o.momentum).nesterov(o.nesterov).weight_decay(o.weight_decay));
  }
  if (o.betas.size() != 2) throw std::invalid_argument("optim.betas must have two values");
  if (o.name == "adam") {
    return std::make_unique<torch::optim::Adam>(
        params,
        torch::optim::AdamOptions(o.lr).betas({o.betas[0], o.betas[1]}).eps(o.eps).weight_decay(o.weight_decay));
  }
  if (o.name == "adamw") {
    return std::make_unique<torch::optim::AdamW>(
        params,
        torch::optim::AdamWOptions(o.lr).betas({o.betas[0], o.betas[1]}).eps(o.eps).weight_decay(o.weight_decay));
  }
  throw std::invalid_argument("unknown optimizer '" + o.name + "' (sgd, adam, adamw)");
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimOptions& o, const std::vector<ParamGroup>& groups) {
  if (o.name == "sgd") {
    return grouped<torch::optim::SGD>(
        torch::optim::SGDOptions(o.lr).momentum(o.momentum).nesterov(o.nesterov).weight_decay(o.weight_decay), groups);
  }
  if (o.betas.size() != 2) throw std::invalid_argument("optim.betas must have two values");
  if (o.name == "adam") {
    return grouped<torch::optim::Adam>(
        torch::optim::AdamOptions(o.lr).betas({o.betas[0], o.betas[1]}).eps(o.eps).weight_decay(o.weight_decay),
        groups);
  }
  if (o.name == "adamw") {
    return grouped<torch::optim::AdamW>(
        torch::optim::AdamWOptions(o.lr).betas({o.betas[0], o.betas[1]}).eps(o.eps).weight_decay(o.weight_decay),
        groups);
  }
  throw std::invalid_argument("unknown optimizer '" + o.name + "' (sgd, adam, adamw)");
}

double lr_at_epoch(const OptimOptions& o, std::int64_t e, std::int64_t total) {
  constexpr double kPi = 3.14159265358979323846;
  auto cosine = [&](double t_cur, double t_i) { return o.eta_min + (o.lr - o.eta_min) * (1 + std::cos(kPi * t_cur / t_i)) / 2; };
  if (o.schedule == "constant") return o.lr;
  if (o.schedule == "step") {
    int passed = 0;
    for (auto m : o.milestones) passed += (m <= e) ? 1 : 0;
    return o.lr * std::pow(o.gamma, passed);
  }
  if (o.schedule == "cosine") return cosine(static_cast<double>(e), static_cast<double>(std::max<std::int64_t>(total, 1)));
  if (o.schedule == "cosine_restarts") {
    double t0 = static_cast<double>(o.t0);
    if (o.t_mult == 1) return cosine(std::fmod(static_cast<double>(e), t0), t0);
    double m = static_cast<double>(o.t_mult);
    double n = std::floor(std::log(e / t0 * (m - 1) + 1) / std::log(m));
    double t_cur = e - t0 * (std::pow(m, n) - 1) / (m - 1);
    return cosine(t_cur, t0 * std::pow(m, n));
  }
  throw std::invalid_argument("unknown schedule '" + o.schedule + "' (constant, step, cosine, cosine_restarts)");
}

void set_lr(torch::optim::Optimizer& opt, double lr) {
  for (auto& group : opt.param_groups()) group.options().set_lr(lr);
}

}  // namespace reglab::paradigms

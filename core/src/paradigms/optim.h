// paradigms/optim.h — optimizers and learning-rate schedules from [optim].
//
// Schedules are evaluated per epoch (0-based e, E epochs), as PyTorch's
// schedulers stepped once per epoch compute them:
//   constant         lr
//   step             lr · gamma^(number of milestones ≤ e)       (MultiStepLR)
//   cosine           eta_min + (lr − eta_min)(1 + cos(π e / E))/2 (CosineAnnealingLR, T_max = E)
//   cosine_restarts  the same within restart periods T0, T0·t_mult, ... (CosineAnnealingWarmRestarts)
#pragma once

#include <torch/optim/optimizer.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "reglab/method.h"

namespace reglab::paradigms {

struct OptimOptions {
  std::string name = "sgd";  // sgd | adam | adamw
  double lr = 0.1;
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 0.0;
  std::vector<double> betas = {0.9, 0.999};
  double eps = 1e-8;
  std::string schedule = "constant";  // constant | step | cosine | cosine_restarts
  std::vector<std::int64_t> milestones;
  double gamma = 0.1;
  std::int64_t t0 = 10;
  std::int64_t t_mult = 1;
  double eta_min = 0.0;
};

OptimOptions optim_options_from(const config::Json& optim_table);

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimOptions& o,
                                                        const std::vector<torch::Tensor>& params);

// The same optimizer over groups (a method's transform_model), each with its
// own weight decay instead of o.weight_decay; empty groups are left out.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimOptions& o,
                                                        const std::vector<ParamGroup>& groups);

double lr_at_epoch(const OptimOptions& o, std::int64_t epoch, std::int64_t total_epochs);

void set_lr(torch::optim::Optimizer& opt, double lr);

}  // namespace reglab::paradigms

// paradigms/mil.h — multiple-instance learning on bags of instances.
//
// Builds training and test bags (data/bags.h) from the instances of the
// configured dataset — the training pool is the training split (after
// data.val_fraction and data.limit), the test pool the test split (after
// data.test_limit) — trains an attention-MIL model (models/mil_models.h) on
// the bag labels with the method's loss, and evaluates on the test bags
// after every epoch.
//
// A step takes task.bags_per_step bags (1 by default, as the reference MIL
// code) in an order that depends only on (seed, epoch). The method sees
//   Batch.inputs    the bags' instances one after the other [Σ N_b, ...]
//   Batch.targets   the bag labels [B] (1 = positive)
//   Batch.indices   the bags' positions in the training set [B]
//   Outputs "logits" [B, 2], "attention_logits" [B, H, N_max] (−inf at
//   padding) and "attention_mask" bool [B, N_max] (true at real instances).
// With a cosine schedule and task.schedule_per_step the rate is set before
// every step at the fractional epoch e + i/S (step i of S), as the official
// AEM code does; otherwise once per epoch (paradigms/optim.h).
//
// Records per epoch (step = the 1-based epoch):
//   train.loss              mean of the method's loss over the epoch's bags
//   train.acc               bag accuracy of the training forward passes
//   test.acc, test.nll      bag accuracy and mean NLL on the test bags
//   test.auc                bag ROC AUC with score z_1 − z_0
//   test.attention_entropy  mean over test bags and heads of −Σ a log a (nats)
//   test.attention_max      mean over test bags and heads of the largest weight
//   test.instance_auc       ROC AUC of each instance's attention weight (mean
//                           over heads) against its hidden instance label,
//                           over the instances of all test bags
//   lr, time.train_s, time.epoch_s; and time.startup_s once, at step 0.
// Test bags are evaluated in eval mode, whole bags at a time in chunks of
// about task.eval_batch_size instances. task.threads, when above 0, sets the
// trial's intra-op threads.
// Resumes from run_dir/checkpoint.pt (model, optimizer, method state, epoch);
// a non-finite loss throws std::runtime_error naming the epoch and step;
// interrupts are honoured between steps (runner::Interrupted).
#pragma once

#include "data/bags.h"
#include "runner/trial_env.h"

namespace reglab::paradigms {

void run_mil(runner::TrialEnv& env);

// The bag options of a trial's [data] table (resolved, defaults filled).
data::BagOptions bag_options_from(const config::Json& data_table);

}  // namespace reglab::paradigms

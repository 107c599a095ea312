// paradigms/classify.h — supervised classification with a method's loss.
//
// Trains the configured model on the configured dataset for task.epochs,
// calling the method's hooks (see reglab/method.h), and records per epoch:
//   train.loss                 running mean of the method's loss over the
//                              epoch's batches
//   train.acc                  eval-mode accuracy on the training set against
//                              the labels used for training (possibly noisy)
//   train.clean_acc            eval-mode accuracy on training samples whose
//                              label was not flipped
//   train.flipped_acc          eval-mode accuracy on flipped samples against
//                              their noisy label (memorisation)
//   train.flipped_true_acc     ... and against their true label
//   val.acc, val.nll, test.acc, test.nll, test.ece (15 bins), test.aurc
//   lr, time.train_s (training steps only), time.epoch_s
// and once, at step 0, time.startup_s: from the coordinator's spawn of the
// worker to the end of its first optimizer step.
// The step of every per-epoch metric is the 1-based epoch number.
//
// Resumes from run_dir/checkpoint.pt when present (model, optimizer, method
// state, epoch). A non-finite loss throws std::runtime_error naming the epoch
// and step. Interrupts are honoured between steps (runner::Interrupted).
#pragma once

#include "data/dataset.h"
#include "models/models.h"
#include "runner/trial_env.h"

namespace reglab::paradigms {

void run_classify(runner::TrialEnv& env);

// The data options of a trial's [data] table (resolved, defaults filled).
data::DataOptions data_options_from(const config::Json& data_table);

// The model options of a trial's [model] table (resolved, defaults filled).
models::ModelOptions classify_model_options(const config::Json& model_table);

}  // namespace reglab::paradigms

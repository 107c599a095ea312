// paradigms/sft.h — supervised next-token training of the rlvr policy: the
// warm-up stage that rlvr trials start from (init.from).
//
// The policy (models/policy.h, [policy]) learns worked examples of the
// in-domain task ([arith]): sft.examples distinct problems of the train pool
// (data/arith.h), each the prompt followed by its scratchpad, '#', the
// answer and <eos>. Only response tokens are trained on: the method's
// training_loss gets the logits that predict them, flattened to [N, V], and
// the tokens as targets [N] (Batch::inputs is undefined, Batch::indices the
// 0..N-1 positions in the batch), so a classification loss such as `ce` is
// token-level cross-entropy. Epochs, batch size (examples per step), the
// optimizer and its schedule come from [task] and [optim] as in classify.
//
// Metrics, per epoch e (1-based):
//   sft.loss                 mean training loss of the epoch's steps
//   eval.id.<m>, eval.ood.<m>  evaluate_policy (paradigms/policy_task.h) on
//                            arith.eval_prompts prompts of each domain, one
//                            sampled response each at temperature 1
//   time.epoch_s, lr
// The checkpoint (task.checkpoint_every) resumes an interrupted stage; its
// model entry is the warm-up policy.
#pragma once

#include "runner/trial_env.h"

namespace reglab::paradigms {

void run_sft(runner::TrialEnv& env);

}  // namespace reglab::paradigms

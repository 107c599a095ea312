// reglab/version.h — the versions a plugin is built against.
//
// kApiVersion changes whenever the plugin contract (plugin.h, method.h,
// params.h, context.h) changes incompatibly; the loader refuses a plugin
// built with another value. The project version is informational.
#pragma once

namespace reglab {

inline constexpr unsigned kApiVersion = 5;  // 2: Method::transform_model, before_forward; 3: tta_setup, tta_step;
                                           // 4: the rlvr hooks (rewards, policy_loss, ...), Paradigm kSft;
                                           // 5: MetricSink::declare and MetricDirection (metrics declare their direction)
inline constexpr const char* kVersion = "0.1.0";

}  // namespace reglab

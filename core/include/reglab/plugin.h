// reglab/plugin.h — the plain-data handshake between the core and a method plugin.
//
// A plugin is a shared library exporting one C symbol, `reglab_plugin_entry`,
// that returns a pointer to a static PluginInfo. Everything the loader reads
// before deciding to trust the library is plain C data (integers and C
// strings), so it can be read safely even when the plugin was built with
// another compiler, standard library ABI or LibTorch: the loader compares the
// API version and the ABI fingerprint first and, on any mismatch, reports
// every differing field with both values without calling into the plugin.
// Only then does it call `create`, which returns a C++ object.
//
// Lifetime: the core never unloads a plugin library while the process lives,
// so objects, autograd nodes and exceptions created by plugin code may outlive
// the Method that made them. The strings and arrays a PluginInfo points at
// must be static.
//
// Writing a plugin:
//
//   class MyMethod final : public reglab::Method { ... };
//   REGLAB_PLUGIN(MyMethod,
//       .name = "my_method", .version = "1.0.0",
//       .summary = "one line", .paper = "Author et al. 2024, Title",
//       .paradigms = reglab::kClassify,
//       .params = kMyParams, .num_params = std::size(kMyParams))
#pragma once

#include <cstddef>
#include <cstdint>

#include "reglab/version.h"

namespace reglab {

class Method;

// Paradigms, as bits of PluginInfo::paradigms.
enum Paradigm : std::uint32_t {
  kClassify = 1u << 0,
  kMil = 1u << 1,
  kTta = 1u << 2,
  kRlvr = 1u << 3,
  kSft = 1u << 4,  // supervised next-token training of an rlvr policy (its warm-up stage)
};

enum class ParamType : std::uint32_t { kBool, kInt, kFloat, kString, kIntList, kFloatList, kStringList };

// One parameter of a method, as declared by the plugin.
// `default_value` is a TOML literal ("0.1", "true", "\"mean\"", "[1, 2]").
// Bounds apply to numbers (and to each element of numeric lists); `choices`
// is a '|'-separated list for strings ("mean|sum"), empty for any string.
struct ParamSpec {
  const char* name = "";
  ParamType type = ParamType::kFloat;
  const char* default_value = "";
  double min = 0;
  double max = 0;
  bool has_min = false;
  bool has_max = false;
  const char* choices = "";
  const char* doc = "";
};

// What the core and a plugin must agree on beyond the API version.
struct AbiFingerprint {
  unsigned api_version = 0;
  const char* torch_version = "";
  int cxx11_abi = -1;  // _GLIBCXX_USE_CXX11_ABI, -1 when not libstdc++
  const char* compiler = "";
};

// The fingerprint of the translation unit that evaluates this function:
// the core's when called in the core, the plugin's when expanded by
// REGLAB_PLUGIN in the plugin.
#define REGLAB_STRINGIFY_IMPL(x) #x
#define REGLAB_STRINGIFY(x) REGLAB_STRINGIFY_IMPL(x)
#if defined(_GLIBCXX_USE_CXX11_ABI)
#define REGLAB_CXX11_ABI _GLIBCXX_USE_CXX11_ABI
#else
#define REGLAB_CXX11_ABI -1
#endif
#if defined(__clang__)
#define REGLAB_COMPILER "clang " REGLAB_STRINGIFY(__clang_major__)
#elif defined(__GNUC__)
#define REGLAB_COMPILER "gcc " REGLAB_STRINGIFY(__GNUC__)
#else
#define REGLAB_COMPILER "unknown"
#endif

using CreateMethodFn = Method* (*)();
using DestroyMethodFn = void (*)(Method*);

struct PluginInfo {
  AbiFingerprint abi;
  const char* name = "";
  const char* version = "";
  const char* summary = "";
  const char* paper = "";
  std::uint32_t paradigms = 0;
  const ParamSpec* params = nullptr;
  std::size_t num_params = 0;
  CreateMethodFn create = nullptr;
  DestroyMethodFn destroy = nullptr;
};

}  // namespace reglab

#define REGLAB_PLUGIN_ENTRY_SYMBOL reglab_plugin_entry

// The torch version is only known where torch headers are included; method.h
// defines REGLAB_TORCH_VERSION_STRING.
#define REGLAB_PLUGIN(MethodClass, ...)                                                     \
  extern "C" __attribute__((visibility("default"))) const ::reglab::PluginInfo*             \
  REGLAB_PLUGIN_ENTRY_SYMBOL() {                                                             \
    static const ::reglab::PluginInfo info = [] {                                            \
      ::reglab::PluginInfo i{.abi = {}, __VA_ARGS__};                                        \
      i.abi = ::reglab::AbiFingerprint{::reglab::kApiVersion, REGLAB_TORCH_VERSION_STRING,   \
                                       REGLAB_CXX11_ABI, REGLAB_COMPILER};                   \
      i.create = []() -> ::reglab::Method* { return new MethodClass(); };                    \
      i.destroy = [](::reglab::Method* m) { delete m; };                                     \
      return i;                                                                              \
    }();                                                                                     \
    return &info;                                                                            \
  }

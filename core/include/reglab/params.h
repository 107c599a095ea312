// reglab/params.h — typed parameter values handed to a method.
//
// A Params object is the method's table of the resolved trial configuration
// ([method] minus `name`), already validated against the plugin's declared
// schema and completed with defaults: every declared parameter is present and
// has its declared type. Lookups of undeclared names, or with the wrong type,
// throw std::invalid_argument naming the parameter. No torch here.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace reglab {

using ParamValue = std::variant<bool, std::int64_t, double, std::string,
                                std::vector<std::int64_t>, std::vector<double>,
                                std::vector<std::string>>;

class Params {
 public:
  Params() = default;
  explicit Params(std::map<std::string, ParamValue> values) : values_(std::move(values)) {}

  bool has(const std::string& name) const { return values_.count(name) != 0; }
  bool get_bool(const std::string& name) const { return get<bool>(name, "bool"); }
  std::int64_t get_int(const std::string& name) const { return get<std::int64_t>(name, "int"); }
  // Integers are accepted where a float is asked for (TOML writes 1 for 1.0).
  double get_double(const std::string& name) const;
  const std::string& get_string(const std::string& name) const {
    return get<std::string>(name, "string");
  }
  std::vector<std::int64_t> get_int_list(const std::string& name) const {
    return get<std::vector<std::int64_t>>(name, "int list");
  }
  std::vector<double> get_double_list(const std::string& name) const;
  const std::vector<std::string>& get_string_list(const std::string& name) const {
    return get<std::vector<std::string>>(name, "string list");
  }

  void set(const std::string& name, ParamValue value) { values_[name] = std::move(value); }
  const std::map<std::string, ParamValue>& values() const { return values_; }

 private:
  template <class T>
  const T& get(const std::string& name, const char* type_name) const;

  std::map<std::string, ParamValue> values_;
};

// ---- implementation (header-only so plugins need no core library) ----

[[noreturn]] inline void throw_param_error(const std::string& name, const char* what);

template <class T>
const T& Params::get(const std::string& name, const char* type_name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw_param_error(name, "is not set");
  if (const T* v = std::get_if<T>(&it->second)) return *v;
  throw_param_error(name, type_name);
}

inline double Params::get_double(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw_param_error(name, "is not set");
  if (const double* d = std::get_if<double>(&it->second)) return *d;
  if (const std::int64_t* i = std::get_if<std::int64_t>(&it->second)) return static_cast<double>(*i);
  throw_param_error(name, "float");
}

inline std::vector<double> Params::get_double_list(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw_param_error(name, "is not set");
  if (const auto* d = std::get_if<std::vector<double>>(&it->second)) return *d;
  if (const auto* i = std::get_if<std::vector<std::int64_t>>(&it->second))
    return std::vector<double>(i->begin(), i->end());
  throw_param_error(name, "float list");
}

[[noreturn]] inline void throw_param_error(const std::string& name, const char* what) {
  throw std::invalid_argument("parameter '" + name + "' " +
                              (std::string(what) == "is not set" ? std::string(what)
                                                                 : "is not of type " + std::string(what)));
}

}  // namespace reglab

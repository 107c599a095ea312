// query/stats.cpp — Student's t quantile.
#include <array>
#include <cmath>
#include <limits>
#include <string>

#include "query/compare.h"

namespace reglab::query {

double t_quantile_975(std::int64_t dof) {
  if (dof < 1) return std::numeric_limits<double>::quiet_NaN();
  // Exact quantiles for 1..30 degrees of freedom (computed to 9 digits by
  // inverting the regularised incomplete beta function), where the series
  // below is not accurate enough.
  static constexpr std::array<double, 30> kTable = {
      12.70620474, 4.30265273, 3.182446305, 2.776445105, 2.570581836, 2.446911851,
      2.364624252, 2.306004135, 2.262157163, 2.228138852, 2.20098516,  2.17881283,
      2.160368656, 2.144786688, 2.131449546, 2.119905299, 2.109815578, 2.10092204,
      2.093024054, 2.085963447, 2.079613845, 2.073873068, 2.06865761,  2.063898562,
      2.059538553, 2.055529439, 2.051830516, 2.048407142, 2.045229642, 2.042272456};
  if (dof <= static_cast<std::int64_t>(kTable.size())) return kTable[static_cast<std::size_t>(dof - 1)];
  // Cornish-Fisher expansion of t in powers of 1/dof around the normal
  // quantile z (Abramowitz & Stegun 26.7.5); beyond 30 dof the error is
  // below 3e-8.
  constexpr double z = 1.959963984540054;
  const double n = static_cast<double>(dof);
  const double z2 = z * z, z3 = z2 * z, z5 = z3 * z2, z7 = z5 * z2, z9 = z7 * z2;
  const double g1 = (z3 + z) / 4.0;
  const double g2 = (5.0 * z5 + 16.0 * z3 + 3.0 * z) / 96.0;
  const double g3 = (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / 384.0;
  const double g4 = (79.0 * z9 + 776.0 * z7 + 1482.0 * z5 - 1920.0 * z3 - 945.0 * z) / 92160.0;
  return z + g1 / n + g2 / (n * n) + g3 / (n * n * n) + g4 / (n * n * n * n);
}

}  // namespace reglab::query

// The tiny model and batches that several tta golden tests share (tent, eata,
// sfda_kl and the probe): Linear(3,4) -> BatchNorm1d(4) -> ReLU -> Linear(4,3)
// with the weights below, and two batches of four 3-feature inputs. The
// expected numbers next to them come from the official implementations run on
// this model (see each test file's header for which code and how); only
// values more than one test file checks live here.
#pragma once

#include <torch/nn/modules/container/sequential.h>

#include <vector>

#include "methods/method_harness.h"
#include "methods/tta_harness.h"

namespace reglab::testing::tta_fixture {

inline const Rows kW1 = {{0.5, -0.3, 0.8}, {-0.6, 0.9, 0.2}, {0.3, 0.4, -0.7}, {0.8, 0.1, 0.5}};
inline const std::vector<double> kB1 = {0.1, -0.2, 0.05, 0.0};
inline const std::vector<double> kGamma = {1.0, 0.8, 1.2, 0.9};
inline const std::vector<double> kBeta = {0.1, -0.1, 0.2, 0.0};
inline const Rows kW2 = {{1.5, -1.0, 0.5, 2.0}, {-1.2, 1.8, 0.7, -0.5}, {0.4, -0.6, 2.5, 1.0}};
inline const std::vector<double> kB2 = {0.1, 0.0, -0.1};
inline const Rows kX1 = {{1.0, 0.5, -0.5}, {-0.8, 1.2, 0.3}, {0.2, -1.0, 1.5}, {1.5, 0.3, 0.8}};
inline const Rows kX2 = {{-1.0, -0.5, 0.7}, {0.6, 0.9, -1.2}, {1.1, -0.4, 0.2}, {-0.3, 0.8, 1.0}};

// The source model's outputs on kX1 with batch statistics: the first
// prediction of every method that normalises with the test batch.
inline const Rows kSourceLogitsX1 = {{0.926562428, 1.15718734, 4.03281212},
                                     {-0.947525859, 2.57516193, 0.219705492},
                                     {2.3258729, -1.58255637, 0.577626348},
                                     {4.09370613, -1.41531539, 2.48227501}};

// Tent with its defaults (Adam, lr 1e-3, β 0.9) on kX1 then kX2, from the
// official tent.py (tent_test.cpp says how): BatchNorm weight and bias after
// each step, and the logits returned for kX2.
inline const std::vector<double> kTentGamma1 = {1.00100005, 0.800999999, 1.20100009, 0.900999963};
inline const std::vector<double> kTentBeta1 = {0.101000004, -0.0989999995, 0.199000001, 0.000999999931};
inline const Rows kTentLogitsX2 = {{0.389115125, -0.184567019, -0.0384776667},
                                   {1.14848077, 1.46787298, 5.14240408},
                                   {4.56962967, -1.87590528, 2.30118942},
                                   {0.499395877, 0.889638364, -0.178304195}};
inline const std::vector<double> kTentGamma2 = {1.00182676, 0.801897407, 1.20200014, 0.901943028};
inline const std::vector<double> kTentBeta2 = {0.101864211, -0.0981823355, 0.198119029, 0.00161593838};

// Clean held-out inputs, and EATA's Fisher of the BatchNorm weight and bias
// estimated on all six in batches of 4 and 2, from the official EATA code
// (eata_test.cpp says how).
inline const Rows kHeldOut = {{0.3, -0.7, 1.1}, {-1.2, 0.4, 0.6}, {0.9, 1.3, -0.2},
                              {-0.5, -0.9, -1.4}, {1.6, -0.2, 0.4}, {0.1, 0.8, -0.9}};
inline const std::vector<double> kEataFisherWeight = {0.00184184324, 0.0736927763, 0.0607962087, 0.00128471339};
inline const std::vector<double> kEataFisherBias = {0.00154971879, 0.070379898, 0.0651492849, 0.00128742773};

inline torch::nn::Sequential tiny() { return make_tiny_bn_model(kW1, kB1, kGamma, kBeta, kW2, kB2); }

}  // namespace reglab::testing::tta_fixture

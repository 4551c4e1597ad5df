#pragma once
// The device model's free coefficients, fitted by least squares on measured layers
// (docs/device_models.md, "Fitted and assumed coefficients").
//
// LLVM's scheduling model gives the cycles of the loops; what it cannot give is how far a real
// core departs from that model and what a layer costs outside its loops. Three coefficients carry
// that:
//   compute_ms = micro_scale * micro_ms + pass_scale * pass_ms + layer_overhead_us / 1000
// where micro_ms is the modelled microkernel time and pass_ms the modelled passes around it
// (im2col or bit-plane packing, epilogue, activation).
#include <string>
#include <vector>

namespace mixnas::eval::devmodel {

struct ModelCoefficients {
  double micro_scale = 1.0;
  double pass_scale = 1.0;
  double layer_overhead_us = 0.0;

  double compute_ms(double micro_ms, double pass_ms) const {
    return micro_scale * micro_ms + pass_scale * pass_ms + layer_overhead_us * 1e-3;
  }
};

// One measured layer: the model's unscaled terms and the measurement.
struct FitSample {
  double micro_ms = 0, pass_ms = 0, measured_ms = 0;
  std::string group;  // samples of one group are held out together (same shape, other bits)
};

struct FitResult {
  ModelCoefficients coefficients;
  double fit_mape_pct = 0;          // on the samples fitted
  double held_out_mape_pct = 0;     // leave-one-group-out: each group predicted by a fit without it
  std::vector<double> held_out_ms;  // per sample, that held-out prediction
  int n = 0, groups = 0;
};

// Least squares of the relative error (each row divided by its measurement, so that small layers
// count as much as large ones), with every coefficient >= 0: a term that comes out negative is
// dropped (0) and the rest refitted. Throws mixnas::Error with fewer samples than terms or a
// sample whose measurement is not positive.
ModelCoefficients fit_coefficients(const std::vector<FitSample>& samples);

// fit_coefficients plus its in-sample and leave-one-group-out MAPE.
FitResult fit_with_held_out(const std::vector<FitSample>& samples);

}  // namespace mixnas::eval::devmodel

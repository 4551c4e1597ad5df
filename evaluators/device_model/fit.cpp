#include "evaluators/device_model/fit.h"

#include <cmath>
#include <map>

#include <Eigen/Dense>

#include "core/error.h"

namespace mixnas::eval::devmodel {

namespace {

constexpr int kTerms = 3;  // micro_scale, pass_scale, layer_overhead_us

// The row of one sample over its measurement: the fit minimises relative errors.
Eigen::RowVector3d relative_row(const FitSample& s) {
  return Eigen::RowVector3d(s.micro_ms, s.pass_ms, 1e-3) / s.measured_ms;
}

ModelCoefficients from_vector(const Eigen::Vector3d& x) {
  return {x(0), x(1), x(2)};
}

double mape_pct(const ModelCoefficients& c, const std::vector<const FitSample*>& samples) {
  double sum = 0;
  for (const FitSample* s : samples)
    sum += std::fabs(c.compute_ms(s->micro_ms, s->pass_ms) - s->measured_ms) / s->measured_ms;
  return samples.empty() ? 0 : 100.0 * sum / samples.size();
}

ModelCoefficients fit(const std::vector<const FitSample*>& samples) {
  const int n = static_cast<int>(samples.size());
  Eigen::MatrixXd a(n, kTerms);
  for (int i = 0; i < n; ++i) {
    if (!(samples[i]->measured_ms > 0))
      throw Error("device model fit: sample " + std::to_string(i) + " (" + samples[i]->group +
                  ") has no positive measurement");
    a.row(i) = relative_row(*samples[i]);
  }
  const Eigen::VectorXd b = Eigen::VectorXd::Ones(n);  // measured / measured
  // Active set: terms whose coefficient comes out negative are fixed at 0 and the rest refitted.
  std::vector<bool> active(kTerms, true);
  for (int round = 0; round < kTerms; ++round) {
    std::vector<int> cols;
    for (int j = 0; j < kTerms; ++j)
      if (active[j]) cols.push_back(j);
    if (n < static_cast<int>(cols.size()))
      throw Error("device model fit: " + std::to_string(n) + " samples for " +
                  std::to_string(cols.size()) + " coefficients");
    Eigen::MatrixXd sub(n, cols.size());
    for (size_t k = 0; k < cols.size(); ++k) sub.col(k) = a.col(cols[k]);
    const Eigen::VectorXd x = sub.colPivHouseholderQr().solve(b);
    Eigen::Vector3d full = Eigen::Vector3d::Zero();
    bool negative = false;
    for (size_t k = 0; k < cols.size(); ++k) {
      full(cols[k]) = x(k);
      if (x(k) < 0) active[cols[k]] = false, negative = true;
    }
    if (!negative) return from_vector(full);
  }
  return from_vector(Eigen::Vector3d::Zero());
}

}  // namespace

ModelCoefficients fit_coefficients(const std::vector<FitSample>& samples) {
  std::vector<const FitSample*> all;
  for (const FitSample& s : samples) all.push_back(&s);
  return fit(all);
}

FitResult fit_with_held_out(const std::vector<FitSample>& samples) {
  std::vector<const FitSample*> all;
  std::map<std::string, std::vector<const FitSample*>> groups;
  for (const FitSample& s : samples) all.push_back(&s), groups[s.group].push_back(&s);
  FitResult r;
  r.coefficients = fit(all);
  r.fit_mape_pct = mape_pct(r.coefficients, all);
  r.n = static_cast<int>(samples.size());
  r.groups = static_cast<int>(groups.size());
  r.held_out_ms.resize(samples.size());
  double held_out_sum = 0;
  for (const auto& [name, members] : groups) {
    std::vector<const FitSample*> rest;
    for (const FitSample* s : all)
      if (s->group != name) rest.push_back(s);
    const ModelCoefficients c = fit(rest);
    for (const FitSample* s : members) {
      const double p = c.compute_ms(s->micro_ms, s->pass_ms);
      r.held_out_ms[s - samples.data()] = p;
      held_out_sum += std::fabs(p - s->measured_ms) / s->measured_ms;
    }
  }
  r.held_out_mape_pct = 100.0 * held_out_sum / r.n;
  return r;
}

}  // namespace mixnas::eval::devmodel

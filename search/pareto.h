#pragma once
// Pareto fronts of (cost, value) points, lower cost and higher value better: the evolution
// strategy's front over predicted latency and proxy score, and the study's fronts over measured
// latency and mAP50-95.
#include <string>
#include <utility>
#include <vector>

namespace mixnas::search {

using CostValue = std::pair<double, double>;  // (cost, value)

// Indices of the non-dominated points, by increasing cost. Along the front the value strictly
// increases with the cost (monotone): a point is kept only when every cheaper-or-equal point has
// a lower value; of equal points the first is kept.
std::vector<size_t> pareto_front(const std::vector<CostValue>& points);

// The points of cost in [low, high], best first: higher value, then lower cost, then the first.
// Its first point under nested budgets (low = -inf) never falls in value as the budget grows.
std::vector<size_t> ranked_between(const std::vector<CostValue>& points, double low, double high);

// For points in groups (groups[i] names point i's), the index of each group's highest value (of
// equal values the first), the groups in the order of their first point: the kept candidate of
// each budget (search.finetune_top).
std::vector<size_t> best_per_group(const std::vector<std::string>& groups,
                                   const std::vector<double>& values);

// The area the points dominate up to the reference point (ref_cost, ref_value): the union of the
// rectangles [cost, ref_cost] x [ref_value, value]. Points beyond the reference add nothing.
double hypervolume(const std::vector<CostValue>& points, double ref_cost, double ref_value);

}  // namespace mixnas::search

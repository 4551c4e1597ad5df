#include "search/pareto.h"

#include <algorithm>
#include <numeric>

namespace mixnas::search {

std::vector<size_t> pareto_front(const std::vector<CostValue>& points) {
  std::vector<size_t> order(points.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (points[a].first != points[b].first) return points[a].first < points[b].first;
    return points[a].second > points[b].second;
  });
  std::vector<size_t> front;
  for (size_t i : order)
    if (front.empty() || points[i].second > points[front.back()].second) front.push_back(i);
  return front;
}

std::vector<size_t> ranked_between(const std::vector<CostValue>& points, double low, double high) {
  std::vector<size_t> in;
  for (size_t i = 0; i < points.size(); ++i)
    if (points[i].first <= high && points[i].first >= low) in.push_back(i);
  std::stable_sort(in.begin(), in.end(), [&](size_t a, size_t b) {
    if (points[a].second != points[b].second) return points[a].second > points[b].second;
    return points[a].first < points[b].first;
  });
  return in;
}

std::vector<size_t> best_per_group(const std::vector<std::string>& groups,
                                   const std::vector<double>& values) {
  std::vector<size_t> best;
  for (size_t i = 0; i < groups.size(); ++i) {
    auto it =
        std::find_if(best.begin(), best.end(), [&](size_t b) { return groups[b] == groups[i]; });
    if (it == best.end()) {
      best.push_back(i);
    } else if (values[i] > values[*it]) {
      *it = i;
    }
  }
  return best;
}

double hypervolume(const std::vector<CostValue>& points, double ref_cost, double ref_value) {
  std::vector<CostValue> inside;
  for (const auto& p : points)
    if (p.first < ref_cost && p.second > ref_value) inside.push_back(p);
  const std::vector<size_t> front = pareto_front(inside);
  double area = 0;
  for (size_t k = 0; k < front.size(); ++k) {
    const CostValue& p = inside[front[k]];
    const double next_cost = k + 1 < front.size() ? inside[front[k + 1]].first : ref_cost;
    area += (next_cost - p.first) * (p.second - ref_value);
  }
  return area;
}

}  // namespace mixnas::search

#pragma once
#include <string>
#include <vector>

namespace mixnas::text {

// Levenshtein distance, for "did you mean" suggestions.
size_t edit_distance(const std::string& a, const std::string& b);
// The candidate closest to `word`, or "" when none is reasonably close.
std::string closest(const std::string& word, const std::vector<std::string>& candidates);
std::vector<std::string> split(const std::string& s, char sep);
std::string join(const std::vector<std::string>& parts, const std::string& sep);
std::string trim(const std::string& s);
// One number through a printf format ("%.3f"), for log lines.
std::string fmt(const char* printf_format, double v);
bool starts_with(const std::string& s, const std::string& prefix);
bool ends_with(const std::string& s, const std::string& suffix);

}  // namespace mixnas::text

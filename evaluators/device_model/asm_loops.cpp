#include "evaluators/device_model/asm_loops.h"

#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include "core/error.h"

namespace mixnas::eval::devmodel {

namespace {

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// One line of assembler text, classified.
struct Line {
  enum Kind { kOther, kLabel, kSymbol, kInstruction } kind = kOther;
  std::string text;    // trimmed, comment dropped (instructions), name (labels)
  std::string target;  // instructions: the local label a branch names, else ""
};

bool is_branch(const std::string& mnemonic) {
  // AArch64: b, b.<cond> (GCC also writes b<cond>: bne), cbz/cbnz, tbz/tbnz; x86-64: jmp and
  // every j<cond>.
  static const std::regex arm_cond("b(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le)");
  return mnemonic == "b" || mnemonic.rfind("b.", 0) == 0 || std::regex_match(mnemonic, arm_cond) ||
         mnemonic == "cbz" || mnemonic == "cbnz" || mnemonic == "tbz" || mnemonic == "tbnz" ||
         (mnemonic.size() >= 2 && mnemonic[0] == 'j');
}

Line classify(const std::string& raw) {
  Line l;
  std::string s = trim(raw);
  if (s.empty() || s[0] == '#' || s.rfind("//", 0) == 0) return l;
  if (s.back() == ':') {
    l.text = s.substr(0, s.size() - 1);
    l.kind = l.text[0] == '.' ? Line::kLabel : Line::kSymbol;
    return l;
  }
  if (s[0] == '.') return l;  // a directive
  for (const char* c : {"//", "\t#", " #"}) {
    const size_t at = s.find(c);
    if (at != std::string::npos) s = trim(s.substr(0, at));
  }
  l.kind = Line::kInstruction;
  l.text = s;
  const std::string mnemonic = s.substr(0, s.find_first_of(" \t"));
  if (is_branch(mnemonic)) {
    const size_t at = s.find_last_of(" \t,");
    const std::string last = trim(s.substr(at + 1));
    if (!last.empty() && last[0] == '.') l.target = last;
  }
  return l;
}

}  // namespace

std::vector<AsmLoop> innermost_loops(const std::string& asm_text) {
  std::vector<Line> lines;
  std::istringstream in(asm_text);
  for (std::string raw; std::getline(in, raw);) lines.push_back(classify(raw));
  // Backward branches: (head line, branch line) within one function.
  std::vector<std::pair<size_t, size_t>> loops;
  std::map<std::string, size_t> labels;  // labels of the current function
  std::vector<std::string> function_of(lines.size());
  std::string function;
  for (size_t i = 0; i < lines.size(); ++i) {
    const Line& l = lines[i];
    if (l.kind == Line::kSymbol) function = l.text, labels.clear();
    function_of[i] = function;
    if (l.kind == Line::kLabel) labels[l.text] = i;
    if (l.kind == Line::kInstruction && !l.target.empty()) {
      auto it = labels.find(l.target);
      if (it != labels.end()) loops.push_back({it->second, i});
    }
  }
  std::vector<AsmLoop> out;
  for (const auto& [head, end] : loops) {
    bool inner = true;
    for (const auto& [h2, e2] : loops)
      if ((h2 != head || e2 != end) && h2 >= head && e2 <= end) inner = false;
    if (!inner) continue;
    AsmLoop loop{function_of[head], lines[head].text, {}};
    for (size_t i = head; i <= end; ++i)
      if (lines[i].kind == Line::kInstruction) loop.body.push_back(lines[i].text);
    out.push_back(std::move(loop));
  }
  return out;
}

std::vector<std::string> marked_region(const std::string& asm_text, const std::string& name) {
  std::istringstream in(asm_text);
  std::vector<std::string> best, cur;
  bool on = false;
  for (std::string raw; std::getline(in, raw);) {
    const std::string s = trim(raw);
    if (s.find("LLVM-MCA-BEGIN " + name) != std::string::npos &&
        trim(s.substr(s.find("LLVM-MCA-BEGIN ") + 15)) == name) {
      on = true, cur.clear();
      continue;
    }
    if (s.find("LLVM-MCA-END " + name) != std::string::npos &&
        trim(s.substr(s.find("LLVM-MCA-END ") + 13)) == name) {
      if (cur.size() > best.size()) best = cur;
      on = false;
      continue;
    }
    if (!on) continue;
    const Line l = classify(raw);
    if (l.kind == Line::kInstruction) cur.push_back(l.text);
  }
  return best;
}

int count_mnemonic(const std::vector<std::string>& body, const std::string& mnemonic) {
  const std::regex re("^(" + mnemonic + ")$");
  int n = 0;
  for (const std::string& s : body)
    if (std::regex_match(s.substr(0, s.find_first_of(" \t")), re)) ++n;
  return n;
}

std::string run_command(const std::string& command) {
  char err_path[] = "/tmp/mixnas-devicemodel-XXXXXX";
  const int fd = mkstemp(err_path);
  if (fd < 0) throw Error("device model: cannot create a temporary file in /tmp");
  close(fd);
  FILE* p = popen((command + " 2>" + err_path).c_str(), "r");
  if (!p) throw Error("device model: cannot run '" + command + "'");
  std::string out;
  std::array<char, 4096> buf;
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), p)) > 0;) out.append(buf.data(), n);
  const int rc = pclose(p);
  std::ifstream ef(err_path);
  const std::string err((std::istreambuf_iterator<char>(ef)), std::istreambuf_iterator<char>());
  unlink(err_path);
  if (rc != 0)
    throw Error("device model: '" + command + "' failed (status " + std::to_string(rc) +
                "): " + err.substr(0, 2000));
  return out;
}

void parallel_for(size_t n, int jobs, const std::function<void(size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::exception_ptr first;
  std::mutex first_mutex;
  auto work = [&] {
    for (size_t i; (i = next++) < n;) {
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(first_mutex);
        if (!first) first = std::current_exception();
      }
    }
  };
  std::vector<std::thread> threads;
  const size_t extra = std::min(n, static_cast<size_t>(std::max(jobs, 1))) - (n > 0 ? 1 : 0);
  for (size_t t = 0; t < extra; ++t) threads.emplace_back(work);
  work();
  for (std::thread& t : threads) t.join();
  if (first) std::rethrow_exception(first);
}

double mca_cycles_per_iteration(const std::string& llvm_mca, const std::string& triple,
                                const std::string& cpu, const std::vector<std::string>& body,
                                int iterations) {
  if (body.empty()) throw Error("device model: llvm-mca was given an empty loop body");
  char path[] = "/tmp/mixnas-devicemodel-XXXXXX.s";
  const int fd = mkstemps(path, 2);
  if (fd < 0) throw Error("device model: cannot create a temporary file in /tmp");
  std::string text;
  // x86 bodies are AT&T syntax as GCC writes them; branches keep their (undefined) local labels,
  // which llvm-mca assembles as external symbols.
  for (const std::string& s : body) text += s + "\n";
  if (write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    close(fd);
    throw Error(std::string("device model: cannot write ") + path);
  }
  close(fd);
  std::string out;
  try {
    out = run_command(llvm_mca + " -mtriple=" + triple + " -mcpu=" + cpu +
                      " -iterations=" + std::to_string(iterations) + " " + path);
  } catch (...) {
    unlink(path);
    throw;
  }
  unlink(path);
  std::smatch m;
  static const std::regex cycles_re("Total Cycles:\\s+([0-9]+)");
  if (!std::regex_search(out, m, cycles_re))
    throw Error("device model: no 'Total Cycles' in llvm-mca's output for -mcpu=" + cpu);
  return std::stod(m[1]) / iterations;
}

}  // namespace mixnas::eval::devmodel

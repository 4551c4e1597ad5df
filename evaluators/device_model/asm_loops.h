#pragma once
// Loops of compiler-generated assembly, and llvm-mca over them (docs/device_models.md).
//
// The device model times the loops the runtime's build actually contains: a kernel source is
// compiled with -S by the target's compiler and flags, its innermost loops are found from the
// branches (a label, then a branch back to it in the same function, with no shorter such loop
// inside), and llvm-mca's scheduling model of a core gives the steady-state cycles of one
// iteration. Regions marked "LLVM-MCA-BEGIN name" / "LLVM-MCA-END name" (the bit-serial kernel's
// MIXNAS_BS_MCA_* hooks) are read the same way.
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace mixnas::eval::devmodel {

struct AsmLoop {
  std::string function;           // the enclosing symbol (mangled), "" before the first one
  std::string label;              // the loop head's label
  std::vector<std::string> body;  // instructions, in order, directives and labels dropped
};

// Innermost loops of GNU assembler text (AArch64 or x86-64 AT&T syntax).
std::vector<AsmLoop> innermost_loops(const std::string& asm_text);

// The longest region marked "LLVM-MCA-BEGIN name" ... "LLVM-MCA-END name"; empty when none.
std::vector<std::string> marked_region(const std::string& asm_text, const std::string& name);

// Instructions of `body` whose mnemonic matches the ECMAScript regex `mnemonic` (whole word).
int count_mnemonic(const std::vector<std::string>& body, const std::string& mnemonic);

// llvm-mca's steady-state cycles per iteration of `body` on `cpu` (e.g. "cortex-a72", "znver3"),
// from `iterations` simulated iterations. Throws mixnas::Error with llvm-mca's message when it
// rejects the input or the CPU has no scheduling model.
double mca_cycles_per_iteration(const std::string& llvm_mca, const std::string& triple,
                                const std::string& cpu, const std::vector<std::string>& body,
                                int iterations = 200);

// Runs a shell command; returns its stdout. Throws mixnas::Error naming the command and its
// stderr when it exits non-zero.
std::string run_command(const std::string& command);

// fn(0) .. fn(n - 1) on up to `jobs` threads (each mostly waits for a compiler or llvm-mca
// process); the first exception is rethrown once all have finished.
void parallel_for(size_t n, int jobs, const std::function<void(size_t)>& fn);

}  // namespace mixnas::eval::devmodel

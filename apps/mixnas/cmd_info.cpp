#include <omp.h>

#include <cstdio>
#include <memory>
#include <sstream>
#include <string>

#include <torch/version.h>
#include "apps/mixnas/commands.h"
#include "core/schemas.h"
#include "core/text.h"
#include "core/version.h"
#include "deploy/runtime/cpu_features.h"
#include "deploy/runtime/kernels/conv.h"
#include "deploy/runtime/version.h"

namespace mixnas::cli {

Runner add_info_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "info", "Print the version, build, CPU features found at run time and threads");
  auto config_docs = std::make_shared<bool>(false);
  cmd->add_flag("--config-docs", *config_docs,
                "Print the schema of every config kind as markdown (docs/configs.md)");
  return [config_docs] {
    if (*config_docs) {
      for (const config::Schema* s : config::all_schemas()) {
        std::ostringstream table;
        s->write_markdown(table);
        std::printf("## %s config\n%s\n\n%s\n", s->kind().c_str(), s->help().c_str(),
                    table.str().c_str());
      }
      return 0;
    }
    const rt::CpuFeatures& cpu = rt::cpu_features();
    std::printf("mixnas %s (%s build, %s), runtime %s\n", MIXNAS_VERSION, MIXNAS_BUILD_TYPE,
                MIXNAS_SYSTEM_PROCESSOR, rt::runtime_version());
    std::printf("cpu:       %s\n", cpu.model_name.empty() ? "(unknown)" : cpu.model_name.c_str());
    std::printf("arch:      %s\n", cpu.arch.c_str());
    auto names = cpu.names();
    std::printf("features:  %s\n", names.empty() ? "(none)" : text::join(names, " ").c_str());
    std::printf("cores:     %d logical\n", cpu.logical_cores);
    std::printf("threads:   %d (OpenMP default)\n", omp_get_max_threads());
    // The conv kernels the runtime's tables pick on this CPU, and for the low bit-widths which
    // (w_bits, a_bits) pairs run bit-serial and which fall back to the int8 kernel, and why.
    std::printf("conv kernels:\n");
    for (const std::string& line : rt::conv_kernel_names_for(cpu))
      std::printf("  %s\n", line.c_str());
    std::printf("libtorch:  %s\n", TORCH_VERSION);
    return 0;
  };
}

}  // namespace mixnas::cli

#pragma once
// Every command that produces results writes to runs/<command>/<name>: exp, exp2, exp3, ... unless
// exist_ok reuses the folder. The run starts by writing the resolved config as args.yaml.
#include <string>

namespace mixnas {

// Creates and returns runs_root/<command>/<name>[N]. With exist_ok the folder is reused as is.
std::string make_run_dir(const std::string& command, const std::string& name, bool exist_ok,
                         const std::string& runs_root = "runs");

}  // namespace mixnas

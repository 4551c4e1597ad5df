#pragma once
// Every command that produces results writes to runs/<command>/<name>: exp, exp2, exp3, ... unless
// exist_ok reuses the folder. The run starts by writing the resolved config as args.yaml.
#include <string>

namespace mixnas {

// Creates and returns runs_root/<command>/<name>[N]. With exist_ok the folder is reused as is.
std::string make_run_dir(const std::string& command, const std::string& name, bool exist_ok,
                         const std::string& runs_root = "runs");

// Removes the run folder `dir` when it holds no file but args.yaml: the remains of a command that
// failed before producing anything (a config error found after the folder was made), which would
// otherwise push the next run to exp2. Returns whether it did.
bool remove_unused_run_dir(const std::string& dir);

}  // namespace mixnas

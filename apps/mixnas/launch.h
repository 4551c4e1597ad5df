#pragma once
// `mixnas train|search ... --nproc N`: one machine's data-parallel job. The process that the user
// started becomes the launcher: it runs this same command line N times as ranks 0..N-1 (torchrun's
// variables RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT set for each),
// waits for them, and stops the job with an error naming the rank when one fails or dies. A
// process that finds RANK set is a rank of a job (started by this launcher or any other) and joins
// it through training/distributed.h. docs/distributed.md.
#include <CLI/CLI.hpp>

#include <optional>
#include <string>

namespace mixnas::cli {

// Adds --nproc to a command.
void add_nproc_option(CLI::App* cmd, int& nproc);

// When RANK is unset and nproc > 1: launches the job's nproc ranks and returns its exit code.
// Otherwise joins the job of the environment (a job of one process without RANK) and returns
// nothing: the caller runs the command as its rank. Throws mixnas::Error on a bad environment.
std::optional<int> launch_or_join(int nproc);

// The job's run folder runs/<command>/<name>: made (numbered) by rank 0, the same on every rank.
std::string make_job_run_dir(const std::string& command, const std::string& name, bool exist_ok);

}  // namespace mixnas::cli

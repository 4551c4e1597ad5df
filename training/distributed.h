#pragma once
// Data-parallel training over LibTorch's c10d (TCPStore rendezvous, ProcessGroupGloo), as
// torchrun's workers do: every rank reads RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
// MASTER_ADDR and MASTER_PORT from the environment (`mixnas train|search --nproc N` sets them for
// N local ranks, apps/mixnas/launch.h). Without them the process is a job of one rank and nothing
// here communicates. docs/distributed.md says what is synchronised and how.
//
// The c10d headers stay inside distributed.cpp: nothing else in mixnas sees them.
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace mixnas::training::dist {

struct Environment {
  int rank = 0, world_size = 1;
  int local_rank = 0, local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  double timeout_s = 1800;  // as torch.distributed's default  // MIXNAS_DIST_TIMEOUT: a collective
                            // that waits longer fails
  // From the variables above; a job of one rank when RANK and WORLD_SIZE are unset. Throws
  // mixnas::Error naming the variable that is malformed.
  static Environment from_process();
};

// Joins the job of `env` (the rendezvous waits up to env.timeout_s for every rank). A job of one
// rank joins nothing. Call once per process, before any trainer exists.
void init(const Environment& env);

int rank();
int world_size();
// Ranks on this machine (threads are split between them).
int local_world_size();
inline bool is_main() {
  return rank() == 0;
}
inline bool active() {
  return world_size() > 1;
}

// Collectives; each is a no-op in a job of one rank. A dead or late rank makes them throw
// mixnas::Error naming `what`, the rank and the timeout (never a hang).
void all_reduce_sum(torch::Tensor& flat, const std::string& what);
void broadcast_from_main(std::vector<torch::Tensor> tensors, const std::string& what);
void barrier(const std::string& what);
// Rank 0's `text` on every rank (the run folder rank 0 chose).
std::string broadcast_string(const std::string& text, const std::string& what);
// The floating-point buffers of `module` (BN running statistics) averaged over the ranks.
void average_buffers(torch::nn::Module& module);
// `module`'s parameters and buffers made rank 0's (the same start everywhere).
void broadcast_module(torch::nn::Module& module);

// State that a model initialises lazily from the first batch it sees (the activation quantizers'
// ranges, supernet/quant.h) would differ between ranks, each seeing its own first micro-batch. This
// runs `forward` (of the global batch's first micro-batch) on rank 0 alone, without gradients and
// with BN running statistics restored afterwards, then gives every rank rank 0's parameters and
// buffers: the state a single process initialises in its first forward. A no-op in a job of one.
void initialise_like_one_process(torch::nn::Module& module, const std::function<void()>& forward);

// Images per micro-batch on this rank: `micro_batch`, or (0) the rank's whole share of `batch`.
// Throws mixnas::Error naming the config key `key` when the ranks cannot share the batch in whole
// micro-batches.
int micro_batch_size(int batch, int micro_batch, const std::string& key);
// The micro-batch `local` of this rank in a global batch cut into micro-batches of `size`: its
// index in the whole batch, the same whichever rank computes it (seeds of random draws).
int64_t global_micro_index(int batch, int size, int64_t local);

// The gradients of one optimizer step over a global batch split into micro-batches, summed in
// float64 so that the sum does not depend on how many ranks computed its terms. After each
// micro-batch's backward, accumulate() moves the `.grad`s into a flat float64 buffer; reduce() sums
// that buffer over the ranks (one all-reduce per step) and writes it back as the `.grad`s. A
// parameter keeps an undefined `.grad` (the optimizer skips it) when no rank gave it one.
class GradientSum {
 public:
  explicit GradientSum(std::vector<torch::Tensor> params);
  void accumulate();
  void reduce();
  // Seconds spent in all-reduce since construction (the bench's allreduce_share).
  double reduce_seconds() const { return reduce_seconds_; }

 private:
  std::vector<torch::Tensor> params_;
  std::vector<int64_t> offsets_;
  torch::Tensor sum_;  // float64: the gradients, then one "defined" flag per parameter
  double reduce_seconds_ = 0;
};

}  // namespace mixnas::training::dist

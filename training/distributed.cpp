#include "training/distributed.h"

#include <chrono>
#include <cstdlib>
#include <numeric>

#include "core/error.h"
#include "core/log.h"

#ifdef MIXNAS_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace mixnas::training::dist {
namespace {

using Clock = std::chrono::steady_clock;

struct Job {
  Environment env;
#ifdef MIXNAS_HAVE_GLOO
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
#endif
};

Job& job() {
  static Job j;
  return j;
}

int int_variable(const char* name, int fallback, int min) {
  const char* text = std::getenv(name);
  if (!text || !*text) return fallback;
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (*end != '\0' || v < min || v > 65535) {
    throw Error(std::string("environment variable ") + name + "='" + text +
                "' is not an integer of at least " + std::to_string(min));
  }
  return static_cast<int>(v);
}

[[maybe_unused]] std::string failure(const std::string& what, const std::string& error) {
  const Environment& env = job().env;
  return "distributed job: " + what + " failed on rank " + std::to_string(env.rank) + " of " +
         std::to_string(env.world_size) + " (a rank died, or did not answer within " +
         std::to_string(static_cast<int>(env.timeout_s)) + " s, MIXNAS_DIST_TIMEOUT): " + error +
         "\nthe job stops here; restart it whole with --resume (from rank 0's checkpoint)";
}

#ifdef MIXNAS_HAVE_GLOO
template <typename Start>
void run(const std::string& what, Start&& start) {
  try {
    c10::intrusive_ptr<c10d::Work> work = start(*job().group);
    work->wait();
  } catch (const c10::Error& e) {
    throw Error(failure(what, e.what_without_backtrace()));
  } catch (const std::exception& e) {
    throw Error(failure(what, e.what()));
  }
}
#endif

}  // namespace

Environment Environment::from_process() {
  Environment env;
  const bool has_rank = std::getenv("RANK") != nullptr;
  const bool has_world = std::getenv("WORLD_SIZE") != nullptr;
  if (has_rank != has_world)
    throw Error("distributed job: set both RANK and WORLD_SIZE, or neither (one process)");
  env.world_size = int_variable("WORLD_SIZE", 1, 1);
  env.rank = int_variable("RANK", 0, 0);
  if (env.rank >= env.world_size) {
    throw Error("distributed job: RANK=" + std::to_string(env.rank) +
                " is not below WORLD_SIZE=" + std::to_string(env.world_size));
  }
  env.local_rank = int_variable("LOCAL_RANK", env.rank, 0);
  env.local_world_size = int_variable("LOCAL_WORLD_SIZE", env.world_size, 1);
  if (const char* addr = std::getenv("MASTER_ADDR"); addr && *addr) env.master_addr = addr;
  env.master_port = int_variable("MASTER_PORT", env.master_port, 1);
  env.timeout_s = int_variable("MIXNAS_DIST_TIMEOUT", static_cast<int>(env.timeout_s), 1);
  return env;
}

void init(const Environment& env) {
  job().env = env;
  if (env.world_size == 1) return;
#ifdef MIXNAS_HAVE_GLOO
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(env.timeout_s * 1000));
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(env.master_port);
    so.isServer = env.rank == 0;
    so.numWorkers = static_cast<std::size_t>(env.world_size);
    so.timeout = timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    job().group =
        c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, options);
  } catch (const std::exception& e) {
    const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
    throw Error(failure("the rendezvous at " + env.master_addr + ":" +
                            std::to_string(env.master_port) + " (MASTER_ADDR:MASTER_PORT)",
                        c10_error ? c10_error->what_without_backtrace() : e.what()));
  }
  log::info("distributed job: rank ", env.rank, " of ", env.world_size, " (Gloo, rendezvous at ",
            env.master_addr, ":", env.master_port, ")");
#else
  throw Error("distributed job: WORLD_SIZE=" + std::to_string(env.world_size) +
              " but this mixnas was built without Gloo (install libgloo-dev and rebuild; "
              "docs/distributed.md)");
#endif
}

int rank() {
  return job().env.rank;
}
int world_size() {
  return job().env.world_size;
}
int local_world_size() {
  return job().env.local_world_size;
}

void all_reduce_sum(torch::Tensor& flat, const std::string& what) {
  if (!active()) return;
#ifdef MIXNAS_HAVE_GLOO
  std::vector<torch::Tensor> tensors{flat};
  run(what, [&](c10d::ProcessGroup& g) { return g.allreduce(tensors); });
#endif
}

void broadcast_from_main(std::vector<torch::Tensor> tensors, const std::string& what) {
  if (!active() || tensors.empty()) return;
#ifdef MIXNAS_HAVE_GLOO
  // One flat buffer per dtype would be fewer calls; this runs once per job and epoch.
  for (auto& t : tensors) {
    // Gloo has no bool: flags (the quantizers' `initialized`) travel as bytes.
    const bool flags = t.scalar_type() == torch::kBool;
    std::vector<torch::Tensor> one{flags ? t.to(torch::kUInt8) : t.detach()};
    run(what, [&](c10d::ProcessGroup& g) { return g.broadcast(one); });
    if (flags) t.copy_(one[0]);
  }
#endif
}

void barrier(const std::string& what) {
  if (!active()) return;
#ifdef MIXNAS_HAVE_GLOO
  run(what, [&](c10d::ProcessGroup& g) { return g.barrier(); });
#endif
}

std::string broadcast_string(const std::string& text, const std::string& what) {
  if (!active()) return text;
  torch::Tensor size = torch::tensor({static_cast<int64_t>(text.size())}, torch::kInt64);
  broadcast_from_main({size}, what);
  torch::Tensor bytes = torch::zeros({size.item<int64_t>()}, torch::kUInt8);
  if (is_main()) std::copy(text.begin(), text.end(), bytes.data_ptr<uint8_t>());
  broadcast_from_main({bytes}, what);
  return std::string(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()),
                     static_cast<size_t>(bytes.numel()));
}

void average_buffers(torch::nn::Module& module) {
  if (!active()) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> floats;
  for (const auto& b : module.buffers(true))
    if (b.is_floating_point()) floats.push_back(b);
  if (floats.empty()) return;
  std::vector<torch::Tensor> flat_parts;
  for (const auto& b : floats) flat_parts.push_back(b.reshape(-1).to(torch::kFloat64));
  torch::Tensor flat = torch::cat(flat_parts);
  all_reduce_sum(flat, "averaging the BN statistics");
  flat.div_(static_cast<double>(world_size()));
  int64_t offset = 0;
  for (auto& b : floats) {
    const int64_t n = b.numel();
    b.copy_(flat.narrow(0, offset, n).view_as(b));
    offset += n;
  }
}

void broadcast_module(torch::nn::Module& module) {
  if (!active()) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> all = module.parameters(true);
  for (const auto& b : module.buffers(true)) all.push_back(b);
  broadcast_from_main(all, "broadcasting rank 0's model");
}

void initialise_like_one_process(torch::nn::Module& module, const std::function<void()>& forward) {
  if (!active()) return;
  if (is_main()) {
    torch::NoGradGuard no_grad;
    std::vector<std::pair<torch::Tensor, torch::Tensor>> statistics;  // buffer, its value before
    for (const auto& b : module.named_buffers(true)) {
      const std::string& name = b.key();
      const auto ends = [&](const std::string& e) {
        return name.size() >= e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0;
      };
      if (ends("running_mean") || ends("running_var") || ends("num_batches_tracked"))
        statistics.emplace_back(b.value(), b.value().clone());
    }
    forward();
    for (auto& [buffer, before] : statistics) buffer.copy_(before);
  }
  broadcast_module(module);
}

// ------------------------------------------------------------------ gradients

int micro_batch_size(int batch, int micro_batch, const std::string& key) {
  const int share = batch / world_size();
  if (batch % world_size() != 0 || (micro_batch > 0 && share % micro_batch != 0)) {
    throw Error("'" + key + "': a batch of " + std::to_string(batch) + " images cannot be shared " +
                "by " + std::to_string(world_size()) + " processes in micro-batches of " +
                std::to_string(micro_batch > 0 ? micro_batch : share) +
                " (the batch must be a multiple of processes x micro_batch)");
  }
  return micro_batch > 0 ? micro_batch : share;
}

int64_t global_micro_index(int batch, int size, int64_t local) {
  return static_cast<int64_t>(rank()) * (batch / world_size() / size) + local;
}

GradientSum::GradientSum(std::vector<torch::Tensor> params) : params_(std::move(params)) {
  int64_t total = 0;
  for (const auto& p : params_) {
    offsets_.push_back(total);
    total += p.numel();
  }
  offsets_.push_back(total);
  sum_ = torch::zeros({total + static_cast<int64_t>(params_.size())}, torch::kFloat64);
}

void GradientSum::accumulate() {
  torch::NoGradGuard no_grad;
  double* flags = sum_.data_ptr<double>() + offsets_.back();
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor& g = params_[i].mutable_grad();
    if (!g.defined()) continue;
    sum_.narrow(0, offsets_[i], params_[i].numel()).add_(g.reshape(-1));
    flags[i] = 1;
    g = torch::Tensor();
  }
}

void GradientSum::reduce() {
  torch::NoGradGuard no_grad;
  const auto t0 = Clock::now();
  all_reduce_sum(sum_, "the all-reduce of the gradients");
  reduce_seconds_ += std::chrono::duration<double>(Clock::now() - t0).count();
  const double* flags = sum_.data_ptr<double>() + offsets_.back();
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor& g = params_[i].mutable_grad();
    if (flags[i] == 0) {
      g = torch::Tensor();
      continue;
    }
    const torch::Tensor part = sum_.narrow(0, offsets_[i], params_[i].numel());
    g = part.view_as(params_[i])
            .to(params_[i].scalar_type(), /*non_blocking=*/false,
                /*copy=*/true);
  }
  sum_.zero_();
}

}  // namespace mixnas::training::dist

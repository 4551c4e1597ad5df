// ONNX Runtime's C API, declared here from its public ABI (the npm package ships the library but
// no headers): OrtGetApiBase() returns {GetApi(version), GetVersionString()}; GetApi returns a
// struct of function pointers whose order is fixed across releases (new functions are only
// appended), so each function used here is addressed by its position in that struct (as in
// onnxruntime_c_api.h, API version 1 onwards). Every call returns an OrtStatus* (null = success).
#include "bench/peers/onnxruntime.h"

#include <dlfcn.h>

#include <filesystem>

#include "core/error.h"

namespace mixnas::peers {
namespace {

struct OrtStatus;
struct OrtEnv;
struct OrtSession;
struct OrtSessionOptions;
struct OrtValue;
struct OrtMemoryInfo;
struct OrtAllocator;
struct OrtTensorTypeAndShapeInfo;

struct OrtApiBase {
  const void* (*GetApi)(uint32_t version);
  const char* (*GetVersionString)();
};

// The oldest API version holding every function used below; newer libraries serve it too.
constexpr uint32_t kApiVersion = 7;

// Positions in the OrtApi struct.
enum Slot : int {
  kGetErrorMessage = 2,
  kCreateEnv = 3,
  kCreateSession = 7,
  kRun = 9,
  kCreateSessionOptions = 10,
  kSetSessionGraphOptimizationLevel = 23,
  kSetIntraOpNumThreads = 24,
  kSetInterOpNumThreads = 25,
  kSessionGetInputCount = 30,
  kSessionGetOutputCount = 31,
  kSessionGetInputName = 36,
  kSessionGetOutputName = 37,
  kCreateTensorWithDataAsOrtValue = 49,
  kGetTensorMutableData = 51,
  kGetDimensionsCount = 61,
  kGetDimensions = 62,
  kGetTensorShapeElementCount = 64,
  kGetTensorTypeAndShape = 65,
  kCreateCpuMemoryInfo = 69,
  kAllocatorFree = 76,
  kGetAllocatorWithDefaultOptions = 78,
  kReleaseEnv = 92,
  kReleaseStatus = 93,
  kReleaseMemoryInfo = 94,
  kReleaseSession = 95,
  kReleaseValue = 96,
  kReleaseTensorTypeAndShapeInfo = 99,
  kReleaseSessionOptions = 100,
};

constexpr int kLoggingWarning = 2;  // OrtLoggingLevel ORT_LOGGING_LEVEL_WARNING
constexpr int kEnableAll = 99;      // GraphOptimizationLevel ORT_ENABLE_ALL
constexpr int kArenaAllocator = 1;  // OrtAllocatorType OrtArenaAllocator
constexpr int kMemTypeDefault = 0;  // OrtMemType OrtMemTypeDefault
constexpr int kElementFloat = 1;    // ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT

}  // namespace

struct OrtModel::Impl {
  void* library = nullptr;
  void* const* api = nullptr;
  OrtEnv* env = nullptr;
  OrtSessionOptions* options = nullptr;
  OrtSession* session = nullptr;
  OrtMemoryInfo* memory = nullptr;
  std::string origin;

  template <typename Fn>
  Fn fn(Slot slot) const {
    return reinterpret_cast<Fn>(api[slot]);
  }
  // Throws with ONNX Runtime's message when `status` is an error.
  void check(OrtStatus* status, const std::string& what) const {
    if (!status) return;
    std::string message = fn<const char* (*)(const OrtStatus*)>(kGetErrorMessage)(status);
    fn<void (*)(OrtStatus*)>(kReleaseStatus)(status);
    throw Error("ONNX Runtime: " + what + " (" + origin + "): " + message);
  }
  template <typename T>
  void release(Slot slot, T*& p) {
    if (p) fn<void (*)(T*)>(slot)(p);
    p = nullptr;
  }
  std::vector<std::string> names(bool inputs);
  OrtValue* input_value(const std::vector<float>& input, const std::vector<int64_t>& shape);
  std::vector<OrtValue*> run(const std::vector<std::string>& in_names,
                             const std::vector<std::string>& out_names, OrtValue* input);
  OrtTensor tensor(OrtValue* value);
};

std::string default_onnxruntime_library(const std::string& source_dir) {
  if (const char* env = std::getenv("MIXNAS_ORT_LIBRARY")) return env;
#if defined(__aarch64__)
  const char* arch = "arm64";
#else
  const char* arch = "x64";
#endif
  return source_dir + "/.deps/node_modules/onnxruntime-node/bin/napi-v6/linux/" + arch +
         "/libonnxruntime.so.1";
}

OrtModel::OrtModel(const std::string& library, const std::string& onnx_path, int threads)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.origin = onnx_path;
  m.library = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!m.library)
    throw Error("cannot load ONNX Runtime from " + library + ": " + dlerror() +
                " (scripts/install_onnxruntime.sh installs it; or set MIXNAS_ORT_LIBRARY)");
  auto get_base = reinterpret_cast<const OrtApiBase* (*)()>(dlsym(m.library, "OrtGetApiBase"));
  if (!get_base) throw Error(library + " exports no OrtGetApiBase: not ONNX Runtime");
  m.api = static_cast<void* const*>(get_base()->GetApi(kApiVersion));
  if (!m.api) throw Error(library + " does not serve ONNX Runtime C API version 7");
  m.check(m.fn<OrtStatus* (*)(int, const char*, OrtEnv**)>(kCreateEnv)(kLoggingWarning, "mixnas",
                                                                       &m.env),
          "CreateEnv");
  m.check(m.fn<OrtStatus* (*)(OrtSessionOptions**)>(kCreateSessionOptions)(&m.options),
          "CreateSessionOptions");
  using SetInt = OrtStatus* (*)(OrtSessionOptions*, int);
  m.check(m.fn<SetInt>(kSetIntraOpNumThreads)(m.options, threads), "SetIntraOpNumThreads");
  m.check(m.fn<SetInt>(kSetInterOpNumThreads)(m.options, 1), "SetInterOpNumThreads");
  m.check(m.fn<SetInt>(kSetSessionGraphOptimizationLevel)(m.options, kEnableAll),
          "SetSessionGraphOptimizationLevel");
  if (!std::filesystem::exists(onnx_path)) throw Error("no such ONNX file: " + onnx_path);
  m.check(m.fn<OrtStatus* (*)(const OrtEnv*, const char*, const OrtSessionOptions*, OrtSession**)>(
              kCreateSession)(m.env, onnx_path.c_str(), m.options, &m.session),
          "CreateSession");
  m.check(m.fn<OrtStatus* (*)(int, int, OrtMemoryInfo**)>(kCreateCpuMemoryInfo)(
              kArenaAllocator, kMemTypeDefault, &m.memory),
          "CreateCpuMemoryInfo");
  input_names_ = m.names(true);
  output_names_ = m.names(false);
  if (input_names_.size() != 1)
    throw Error(onnx_path + ": " + std::to_string(input_names_.size()) +
                " inputs; the exported models have one (images)");
}

OrtModel::~OrtModel() {
  Impl& m = *impl_;
  m.release(kReleaseMemoryInfo, m.memory);
  m.release(kReleaseSession, m.session);
  m.release(kReleaseSessionOptions, m.options);
  m.release(kReleaseEnv, m.env);
  // The library stays loaded: ONNX Runtime keeps process-wide state (thread pools, loggers).
}

std::vector<std::string> OrtModel::Impl::names(bool inputs) {
  OrtAllocator* allocator = nullptr;
  check(fn<OrtStatus* (*)(OrtAllocator**)>(kGetAllocatorWithDefaultOptions)(&allocator),
        "GetAllocatorWithDefaultOptions");
  size_t count = 0;
  check(fn<OrtStatus* (*)(const OrtSession*, size_t*)>(
            inputs ? kSessionGetInputCount : kSessionGetOutputCount)(session, &count),
        "SessionGetInputCount");
  std::vector<std::string> out;
  for (size_t i = 0; i < count; ++i) {
    char* name = nullptr;
    check(fn<OrtStatus* (*)(const OrtSession*, size_t, OrtAllocator*, char**)>(
              inputs ? kSessionGetInputName : kSessionGetOutputName)(session, i, allocator, &name),
          "SessionGetName");
    out.emplace_back(name);
    check(fn<OrtStatus* (*)(OrtAllocator*, void*)>(kAllocatorFree)(allocator, name),
          "AllocatorFree");
  }
  return out;
}

OrtValue* OrtModel::Impl::input_value(const std::vector<float>& input,
                                      const std::vector<int64_t>& shape) {
  OrtValue* value = nullptr;
  // ONNX Runtime reads the caller's buffer in place; it does not write inputs.
  check(fn<OrtStatus* (*)(const OrtMemoryInfo*, void*, size_t, const int64_t*, size_t, int,
                          OrtValue**)>(kCreateTensorWithDataAsOrtValue)(
            memory, const_cast<float*>(input.data()), input.size() * sizeof(float), shape.data(),
            shape.size(), kElementFloat, &value),
        "CreateTensorWithDataAsOrtValue");
  return value;
}

std::vector<OrtValue*> OrtModel::Impl::run(const std::vector<std::string>& in_names,
                                           const std::vector<std::string>& out_names,
                                           OrtValue* input) {
  std::vector<const char*> in{in_names[0].c_str()}, out;
  for (const auto& n : out_names) out.push_back(n.c_str());
  std::vector<OrtValue*> outputs(out.size(), nullptr);
  const OrtValue* inputs[] = {input};
  OrtStatus* status =
      fn<OrtStatus* (*)(OrtSession*, const void*, const char* const*, const OrtValue* const*,
                        size_t, const char* const*, size_t, OrtValue**)>(kRun)(
          session, nullptr, in.data(), inputs, 1, out.data(), out.size(), outputs.data());
  fn<void (*)(OrtValue*)>(kReleaseValue)(input);
  check(status, "Run");
  return outputs;
}

OrtTensor OrtModel::Impl::tensor(OrtValue* value) {
  OrtTensorTypeAndShapeInfo* info = nullptr;
  check(fn<OrtStatus* (*)(const OrtValue*, OrtTensorTypeAndShapeInfo**)>(kGetTensorTypeAndShape)(
            value, &info),
        "GetTensorTypeAndShape");
  size_t dims = 0, count = 0;
  check(fn<OrtStatus* (*)(const OrtTensorTypeAndShapeInfo*, size_t*)>(kGetDimensionsCount)(info,
                                                                                           &dims),
        "GetDimensionsCount");
  OrtTensor t;
  t.shape.resize(dims);
  check(fn<OrtStatus* (*)(const OrtTensorTypeAndShapeInfo*, int64_t*, size_t)>(kGetDimensions)(
            info, t.shape.data(), dims),
        "GetDimensions");
  check(fn<OrtStatus* (*)(const OrtTensorTypeAndShapeInfo*, size_t*)>(kGetTensorShapeElementCount)(
            info, &count),
        "GetTensorShapeElementCount");
  release(kReleaseTensorTypeAndShapeInfo, info);
  void* data = nullptr;
  check(fn<OrtStatus* (*)(OrtValue*, void**)>(kGetTensorMutableData)(value, &data),
        "GetTensorMutableData");
  const float* f = static_cast<const float*>(data);
  t.values.assign(f, f + count);
  return t;
}

std::vector<OrtTensor> OrtModel::run(const std::vector<float>& input,
                                     const std::vector<int64_t>& shape) {
  Impl& m = *impl_;
  std::vector<OrtValue*> values = m.run(input_names_, output_names_, m.input_value(input, shape));
  std::vector<OrtTensor> out;
  for (OrtValue* v : values) {
    out.push_back(m.tensor(v));
    m.release(kReleaseValue, v);
  }
  return out;
}

void OrtModel::run_discard(const std::vector<float>& input, const std::vector<int64_t>& shape) {
  Impl& m = *impl_;
  for (OrtValue* v : m.run(input_names_, output_names_, m.input_value(input, shape)))
    m.release(kReleaseValue, v);
}

std::string OrtModel::version() const {
  auto get_base = reinterpret_cast<const OrtApiBase* (*)()>(dlsym(impl_->library, "OrtGetApiBase"));
  return get_base()->GetVersionString();
}

}  // namespace mixnas::peers

// Writes the golden models of tests/runtime/test_runtime_golden.cpp:
//   mixnas_write_runtime_golden OUT_DIR        (the committed copy: tests/data/runtime_golden)
// For each model of golden_models(): OUT_DIR/NAME.mxr, and the host runtime's run of it on the
// golden input as NAME.golden (tests/runtime/golden.h). Regenerate only when the
// exporter or the runtime changes its numbers on purpose; test_runtime_golden_export fails until
// the committed files match what this build makes.
#include <cstdio>

#include "core/atomic_file.h"
#include "core/error.h"
#include "deploy/runtime/session.h"
#include "tests/export/golden_models.h"
#include "tests/runtime/golden.h"

int main(int argc, char** argv) {
  using namespace mixnas;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 1;
  }
  const std::string dir = argv[1];
  try {
    for (const auto& m : exporter::testing::golden_models()) {
      auto model = exporter::testing::make_golden_model(m.name);
      const std::string package =
          exporter::export_mxr(model, exporter::testing::golden_export_options());
      auto rt_model = rt::Model::from_bytes(package.data(), package.size(), m.name + ".mxr");
      const rt::golden::Record record =
          rt::golden::record_run(rt_model, exporter::testing::kGoldenInputSeed);
      const std::string base = dir + "/" + m.name;
      write_file_atomic(base + ".mxr", package);
      write_file_atomic(base + ".golden", rt::golden::to_text(record, m.name + ".mxr"));
      std::printf("%s.mxr: %zu bytes, %zu tensors, %zu detections\n", base.c_str(), package.size(),
                  record.tensors.size(), record.detections.size());
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}

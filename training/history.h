#pragma once
// The epoch records of a run inside its checkpoint, so that a resume continues its history
// (results.csv, the best epoch): one float64 tensor "history" of every record's fields in turn.
// A record type lists its fields once, in checkpoint order, in
//   template <class Visit> void visit_fields(Visit&& visit) { visit(epoch); visit(loss); ... }
// (each field an int or a double).
#include <torch/torch.h>

#include <type_traits>
#include <vector>

namespace mixnas::training {

template <class Record>
void write_history(torch::serialize::OutputArchive& archive, const std::vector<Record>& records) {
  std::vector<double> flat;
  for (Record r : records) r.visit_fields([&](auto& field) { flat.push_back(double(field)); });
  archive.write("history", torch::tensor(flat, torch::kFloat64), /*is_buffer=*/true);
}

template <class Record>
std::vector<Record> read_history(torch::serialize::InputArchive& archive) {
  torch::Tensor tensor;
  archive.read("history", tensor, /*is_buffer=*/true);
  size_t fields = 0;
  Record().visit_fields([&](auto&) { ++fields; });
  const torch::Tensor flat = tensor.contiguous();
  const double* d = flat.data_ptr<double>();
  const auto n = static_cast<size_t>(flat.numel());
  std::vector<Record> records;
  for (size_t i = 0; i + fields <= n; i += fields) {
    Record r;
    size_t k = i;
    r.visit_fields(
        [&](auto& field) { field = static_cast<std::decay_t<decltype(field)>>(d[k++]); });
    records.push_back(r);
  }
  return records;
}

}  // namespace mixnas::training

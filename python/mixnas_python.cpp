// The `mixnas` Python module: mixnas' runtime (deploy/runtime, no LibTorch) from Python.
//
//   import mixnas
//   model = mixnas.Model("model.mxr", threads=1)
//   det = model.predict(mixnas.imread("bus.jpg"))   # or any HxWx3 uint8 RGB numpy array
//   det.boxes, det.scores, det.classes               # [n, 4] x1 y1 x2 y2 in image pixels, [n], [n]
//   model.benchmark(runs=50, warmup=5)               # {"median_ms": ..., "peak_bytes": ...}
//   model.info                                       # input size, class names, runtime version
//
// predict() is what `mixnas predict MODEL.mxr IMAGE` computes (the package's letterbox, graph and
// NMS, then the score threshold), so both give the same detections for the same pixels.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>

#include "core/error.h"
#include "deploy/runtime/session.h"
#include "deploy/runtime/version.h"

namespace py = pybind11;

namespace {

using mixnas::rt::Detection;

struct Detections {
  py::array_t<float> boxes;      // [n, 4]
  py::array_t<float> scores;     // [n]
  py::array_t<int32_t> classes;  // [n]
  std::vector<std::string> names;
};

Detections to_arrays(const std::vector<Detection>& found, const std::vector<std::string>& names) {
  const auto n = static_cast<py::ssize_t>(found.size());
  Detections d{py::array_t<float>({n, py::ssize_t{4}}), py::array_t<float>(n),
               py::array_t<int32_t>(n), names};
  auto b = d.boxes.mutable_unchecked<2>();
  auto s = d.scores.mutable_unchecked<1>();
  auto c = d.classes.mutable_unchecked<1>();
  for (py::ssize_t i = 0; i < n; ++i) {
    const Detection& f = found[size_t(i)];
    b(i, 0) = f.x1;
    b(i, 1) = f.y1;
    b(i, 2) = f.x2;
    b(i, 3) = f.y2;
    s(i) = f.score;
    c(i) = f.class_id;
  }
  return d;
}

class PyModel {
 public:
  PyModel(const std::string& path, int threads) : path_(path) {
    if (threads < 1) throw mixnas::Error("mixnas.Model(" + path + "): threads must be >= 1");
    model_ = mixnas::rt::Model::load(path);
    mixnas::rt::SessionOptions options;
    options.threads = threads;
    session_ = std::make_unique<mixnas::rt::Session>(model_, options);
  }

  // image: [H, W, 3] uint8 RGB (numpy's usual layout; OpenCV's BGR must be converted first).
  Detections predict(const py::array_t<uint8_t, py::array::c_style | py::array::forcecast>& image,
                     double conf) {
    if (image.ndim() != 3 || image.shape(2) != 3)
      throw mixnas::Error("mixnas.Model.predict: the image must be an [H, W, 3] RGB array, got " +
                          shape_text(image));
    const mixnas::rt::ImageView view{image.data(), int(image.shape(1)), int(image.shape(0)),
                                     int(image.shape(1)) * 3};
    std::vector<Detection> kept;
    {
      py::gil_scoped_release release;  // other Python threads run while the graph does
      for (const Detection& d : session_->run(view))
        if (d.score >= conf) kept.push_back(d);  // in double, as `mixnas predict --conf`
    }
    return to_arrays(kept, names());
  }

  py::dict benchmark(int runs, int warmup) {
    if (runs < 1 || warmup < 0)
      throw mixnas::Error("mixnas.Model.benchmark: runs must be >= 1 and warmup >= 0");
    const auto& in = model_->graph().input;
    // A mid-grey letterboxed input: latency does not depend on the pixels.
    std::vector<uint8_t> grey(size_t(in.height) * in.width * 3, 114);
    session_->set_input_image({grey.data(), in.width, in.height, in.width * 3});
    mixnas::rt::Profile p;
    {
      py::gil_scoped_release release;
      p = session_->profile(runs, warmup);
    }
    py::dict r;
    r["threads"] = p.threads;
    r["runs"] = p.total.runs;
    r["median_ms"] = p.total.median_ms;
    r["p90_ms"] = p.total.p90_ms;
    r["min_ms"] = p.total.min_ms;
    r["mean_ms"] = p.total.mean_ms;
    r["arena_bytes"] = p.memory.arena_bytes;
    r["weight_bytes"] = p.memory.weight_bytes;
    r["peak_bytes"] = p.memory.peak_bytes;
    return r;
  }

  py::dict info() const {
    const auto& g = model_->graph();
    py::dict r;
    r["path"] = path_;
    r["producer"] = g.producer;
    r["imgsz"] = py::make_tuple(g.input.height, g.input.width);
    r["letterbox"] = g.input.letterbox;
    r["names"] = g.output.class_names;
    r["head"] = g.output.decode == mixnas::rt::DecodeKind::kYoloV5   ? "yolov5"
                : g.output.decode == mixnas::rt::DecodeKind::kYoloV8 ? "yolov8"
                                                                     : "none";
    r["strides"] = g.output.strides;
    r["nodes"] = g.nodes.size();
    r["weight_bytes"] = model_->weight_bytes();
    r["threads"] = session_->threads();
    r["runtime_version"] = mixnas::rt::runtime_version();
    return r;
  }

  const std::vector<std::string>& names() const { return model_->graph().output.class_names; }

 private:
  static std::string shape_text(const py::array& a) {
    std::string s = "[";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
    return s + "]";
  }

  std::string path_;
  std::shared_ptr<const mixnas::rt::Model> model_;
  std::unique_ptr<mixnas::rt::Session> session_;
};

// The decoder `mixnas predict` reads images with (stb_image, 3 channels), so that predictions from
// Python and from the command line start from the same pixels.
py::array_t<uint8_t> imread(const std::string& path) {
  int w = 0, h = 0, c = 0;
  stbi_uc* data = stbi_load(path.c_str(), &w, &h, &c, 3);
  if (!data)
    throw mixnas::Error("mixnas.imread: cannot read image " + path + ": " + stbi_failure_reason() +
                        " (JPEG, PNG and BMP are read)");
  py::array_t<uint8_t> out({py::ssize_t(h), py::ssize_t(w), py::ssize_t(3)});
  std::copy(data, data + size_t(w) * h * 3, out.mutable_data());
  stbi_image_free(data);
  return out;
}

}  // namespace

PYBIND11_MODULE(mixnas, m) {
  m.doc() = "mixnas' inference runtime: run .mxr packages from Python (no LibTorch)";
  py::register_exception<mixnas::Error>(m, "Error", PyExc_RuntimeError);
  m.attr("__version__") = mixnas::rt::runtime_version();
  m.def("imread", &imread, py::arg("path"),
        "An image file (JPEG, PNG, BMP) as an [H, W, 3] uint8 RGB array, decoded as `mixnas "
        "predict` decodes it");
  py::class_<Detections>(m, "Detections")
      .def_readonly("boxes", &Detections::boxes, "[n, 4] float32 x1, y1, x2, y2 in image pixels")
      .def_readonly("scores", &Detections::scores, "[n] float32")
      .def_readonly("classes", &Detections::classes, "[n] int32 class indices")
      .def_readonly("names", &Detections::names, "class names of the model")
      .def("__len__", [](const Detections& d) { return d.scores.size(); })
      .def("__repr__", [](const Detections& d) {
        return "<mixnas.Detections: " + std::to_string(d.scores.size()) + " boxes>";
      });
  py::class_<PyModel>(m, "Model")
      .def(py::init<const std::string&, int>(), py::arg("path"), py::arg("threads") = 1,
           "Loads and validates an .mxr package")
      .def("predict", &PyModel::predict, py::arg("image"), py::arg("conf") = 0.25,
           "Detections of an [H, W, 3] uint8 RGB image: boxes, scores, classes")
      .def("benchmark", &PyModel::benchmark, py::arg("runs") = 50, py::arg("warmup") = 5,
           "Latency (ms) and memory (bytes) of the graph on this machine")
      .def_property_readonly("info", &PyModel::info)
      .def_property_readonly("names", &PyModel::names);
}

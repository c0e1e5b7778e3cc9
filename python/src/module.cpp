// lipkit._C: loading it registers every lipkit operator (kernels, layer numerics, the bridge) with
// the torch the interpreter already imported; the few functions without tensors are bound here.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <torch/version.h>

#include <c10/util/Exception.h>

#include "lipkit/deploy/export.h"
#include "lipkit/kernels/operators.h"
#include "lipkit/layers/operators.h"
#include "lipkit/models/presets.h"
#include "lipkit/runtime.h"
#include "lipkit/train/checkpoint.h"

namespace py = pybind11;

PYBIND11_MODULE(_C, m) {
  m.doc() = "lipkit's C++ library: operators under torch.ops.lipkit, presets";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const c10::Error& e) {
      PyErr_SetString(PyExc_ValueError, e.what_without_backtrace());
    }
  });
  std::vector<std::string> ops = lipkit::kernels::register_operators();
  for (auto& op : lipkit::register_layer_operators()) ops.push_back(op);
  m.attr("operators") = ops;
  m.attr("torch_version") = TORCH_VERSION;  // the LibTorch this was compiled against
  m.attr("cxx11_abi") = static_cast<bool>(_GLIBCXX_USE_CXX11_ABI);
  m.def("configure_threads", &lipkit::configure_threads, py::arg("n") = 0,
        "intra-op threads: n, else LIPKIT_NUM_THREADS, OMP_NUM_THREADS, or every core (what the CLI does)");
  m.def("configure_allocator", &lipkit::configure_allocator, "keep large tensors in the heap (the CLI's setting)");
  m.def("recorded_input_shape",
        [](const std::string& meta) { return lipkit::deploy::recorded_input_shape(nlohmann::json::parse(meta)); },
        "the input shape a checkpoint's metadata (JSON) records; empty when none");
  m.def("preset_names", &lipkit::models::preset_names, "the model presets (lipkit presets)");
  m.def("preset_spec", [](const std::string& name) { return lipkit::train::spec_to_json(lipkit::models::model_preset(name)).dump(); },
        "the ModelSpec of a preset, as JSON");
}

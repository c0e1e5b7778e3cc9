#include "lipkit/certify/reestimate.h"

#include <torch/torch.h>

#include <limits>

#include "lipkit/data/transforms.h"
#include "lipkit/layers/linf_dist.h"
#include "lipkit/layers/mean_shift.h"
#include "lipkit/layers/sortnet.h"

namespace lipkit::certify {

int64_t reestimate_mean_shift(torch::nn::Sequential& model, const data::Dataset& data, int64_t batch_size) {
  std::vector<MeanShiftImpl*> shifts;
  std::vector<std::pair<DistanceLayer*, double>> ps;  // each distance layer and its p
  for (auto& m : model->modules(/*include_self=*/false)) {
    if (auto* s = m->as<MeanShiftImpl>()) shifts.push_back(s);
    if (auto* d = dynamic_cast<DistanceLayer*>(m.get())) ps.emplace_back(d, d->p());
  }
  if (shifts.empty()) return 0;
  TORCH_CHECK(data.size() > 0, "reestimate_mean_shift: the data set '", data.name, "' is empty");
  const bool was_training = model->is_training();
  set_distance_p(*model, std::numeric_limits<double>::infinity());
  model->train();
  for (auto* s : shifts) s->begin_average();
  const auto device = model->parameters().empty() ? torch::Device(torch::kCPU) : model->parameters()[0].device();
  const auto dtype = model->parameters().empty() ? torch::kFloat : model->parameters()[0].scalar_type();
  {
    torch::NoGradGuard no_grad;
    for (int64_t s0 = 0; s0 < data.size(); s0 += batch_size) {
      const int64_t len = std::min(batch_size, data.size() - s0);
      model->forward(data::to_float(data.images.narrow(0, s0, len)).to(device, dtype));
    }
  }
  for (auto* s : shifts) s->end_average();
  for (auto& [d, p] : ps) d->set_p(p);
  model->train(was_training);
  return static_cast<int64_t>(shifts.size());
}

}  // namespace lipkit::certify

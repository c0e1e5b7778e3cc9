#include "lipkit/train/trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <cstdio>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

#include "lipkit/certify/certify.h"
#include "lipkit/data/loader.h"
#include "lipkit/data/transforms.h"
#include "lipkit/layers/mean_shift.h"
#include "lipkit/layers/sortnet.h"
#include "lipkit/layers/spline.h"
#include "lipkit/train/checkpoint.h"
#include "lipkit/certify/reestimate.h"
#include "lipkit/dp/mechanism.h"
#include "lipkit/layers/dp_linear.h"
#include "train/loop_support.h"
#include "train/private_training.h"

namespace lipkit::train {

namespace detail {

void make_dirs(const std::string& dir) {
  std::string partial;
  for (size_t i = 0; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') {
      if (!partial.empty()) ::mkdir(partial.c_str(), 0755);
    }
    if (i < dir.size()) partial += dir[i];
  }
  struct stat st {};
  TORCH_CHECK(::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode), "cannot create output folder ", dir);
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerSpec& o, const ParamGroups& groups) {
  std::vector<torch::optim::OptimizerParamGroup> pg;
  if (o.name == "sgd") {
    auto options = [&](double lr) {
      return torch::optim::SGDOptions(lr).momentum(o.momentum).nesterov(o.momentum > 0).weight_decay(o.weight_decay);
    };
    for (const auto& [params, lr] : groups)
      pg.emplace_back(params, std::make_unique<torch::optim::SGDOptions>(options(lr)));
    return std::make_unique<torch::optim::SGD>(pg, options(o.lr));
  }
  auto options = [&](double lr) {
    return torch::optim::AdamOptions(lr).betas({o.beta1, o.beta2}).weight_decay(o.weight_decay);
  };
  for (const auto& [params, lr] : groups)
    pg.emplace_back(params, std::make_unique<torch::optim::AdamOptions>(options(lr)));
  return std::make_unique<torch::optim::Adam>(pg, options(o.lr));
}

ParamGroups parameter_groups(torch::nn::Module& model, const OptimizerSpec& o) {
  std::vector<torch::Tensor> main, splines;
  for (auto& m : model.modules(/*include_self=*/true)) {
    const bool spline = m->as<LinearSplineImpl>() != nullptr;
    for (auto& p : m->parameters(/*recurse=*/false)) (spline && o.spline_lr > 0 ? splines : main).push_back(p);
  }
  ParamGroups groups{{main, o.lr}};
  if (!splines.empty()) groups.emplace_back(splines, o.spline_lr);
  return groups;
}

void set_lr(torch::optim::Optimizer& opt, const OptimizerSpec& o, double factor) {
  auto& groups = opt.param_groups();
  for (size_t g = 0; g < groups.size(); ++g) groups[g].options().set_lr((g == 0 ? o.lr : o.spline_lr) * factor);
}

}  // namespace detail

namespace {

using Clock = std::chrono::steady_clock;
using detail::make_dirs;
using detail::make_optimizer;
using detail::parameter_groups;
using detail::set_lr;

void progress_line(bool tty, int64_t epoch, int64_t epochs, int64_t b, int64_t nb, double loss,
                   double acc, double ips) {
  const int width = 24;
  const int filled = static_cast<int>(width * (b + 1) / nb);
  std::string bar(filled, '#');
  bar += std::string(width - filled, '.');
  std::fprintf(stderr, "%sepoch %ld/%ld [%s] %ld/%ld loss %.4f acc %.3f %.0f img/s%s",
               tty ? "\r" : "", (long)epoch + 1, (long)epochs, bar.c_str(), (long)b + 1, (long)nb,
               loss, acc, ips, tty ? "" : "\n");
  std::fflush(stderr);
}

// The model spec completed from the data: input shape, classes, channel mean (and pixel std for
// distance nets, as the official code: weights start N(0, 1) in that scale; InputNormalization's
// bound 1 / std enters the certificate).
models::ModelSpec spec_for(const TrainConfig& config, const data::Dataset& train_data) {
  models::ModelSpec spec = config.model;
  spec.in_channels = train_data.channels();
  spec.image_size = train_data.height();
  spec.num_classes = train_data.num_classes;
  TORCH_CHECK(train_data.height() == train_data.width(), "train: square images expected, got ",
              train_data.height(), "x", train_data.width());
  // a private run may not use statistics of its training data: it subtracts the mid-grey 0.5
  if (config.dp.input_norm > 0) spec.input_norm = config.dp.input_norm;
  spec.mean = spec.family == "dp" ? std::vector<double>(spec.in_channels, 0.5) : data::channel_mean(train_data);
  if ((spec.family == "sortnet" || spec.family == "linfdist") && spec.std.empty())
    spec.std.assign(spec.in_channels, data::pixel_std(train_data));
  return spec;
}

struct EpochStats {
  double loss_sum = 0, correct = 0, seen = 0, seconds = 0;
  double communication = 0;  // seconds in all-reduces (distributed runs)
};

// One training run: set-up and resume, the step loop, evaluate-and-log.
class Run {
 public:
  Run(const TrainConfig& config, const TrainOptions& options)
      : config_(config),
        options_(options),
        train_data_(data::load_dataset(config.data, data::Split::Train).head(config.subset)),
        test_data_(data::load_dataset(config.data, data::Split::Test).head(config.subset)),
        spec_(spec_for(config, train_data_)),
        ckpt_(options.out_dir + "/model.pt"),
        config_json_(to_json(config)) {}

  TrainSummary run();

 private:
  void resume_or_start();
  bool train_epoch(int64_t epoch, EpochStats& stats);  // false: interrupted (checkpoint saved)
  bool train_step(const data::Batch& batch, int64_t epoch, EpochStats& stats);  // false: privacy budget spent
  certify::CertifyResult evaluate(bool final_epoch);  // every rank takes part
  certify::CertifyResult certify_shard(const data::Dataset& test);
  certify::CertifyResult classify_shard(const data::Dataset& test);
  void sum_counts(certify::CertifyResult& r, int64_t total);
  void log_epoch(int64_t epoch, const EpochStats& stats, const certify::CertifyResult& cert);
  void synchronize_step();
  void synchronize_means(bool on);
  bool stop_agreed();
  std::vector<torch::Tensor> buffer_tensors() const;
  std::vector<torch::Tensor> state_tensors() const;
  // processes sharing each batch: EpochStats::seen counts this process's share
  double workers() const { return dist_ ? static_cast<double>(dist_->world()) : 1.0; }
  nlohmann::json meta_for(int64_t epoch, int64_t batch) const {
    nlohmann::json m = {{"config", config_json_}, {"spec", spec_to_json(spec_)}, {"epoch", epoch}, {"batch", batch},
                        {"data", train_data_.name}};
    if (private_) m["dp"] = private_->meta();
    if (options_.dtype == torch::kDouble) m["dtype"] = "float64";
    return m;
  }

  const TrainConfig& config_;
  const TrainOptions& options_;
  data::Dataset train_data_, test_data_;
  models::ModelSpec spec_;
  std::string ckpt_;
  nlohmann::json config_json_;
  int64_t start_epoch_ = 0, start_batch_ = 0, nb_ = 0, total_steps_ = 0;
  torch::nn::Sequential model_{nullptr};
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::unique_ptr<data::BatchLoader> loader_;
  bool tty_ = false, distance_net_ = false;
  double current_p_ = 0, eps_scale_ = 1;
  torch::Tensor ce_scale_;
  bool has_splines_ = false, has_dp_layers_ = false, budget_spent_ = false;
  std::unique_ptr<detail::PrivateTraining> private_;
  ExtraTensors extra_;
  std::shared_ptr<Distributed> dist_;
  bool lead_ = true, progress_ = true;  // rank 0 (or the only process) writes and reports
  TrainSummary summary_;
};

void Run::resume_or_start() {
  dist_ = options_.distributed;
  lead_ = !dist_ || dist_->rank() == 0;
  progress_ = options_.progress && lead_;
  TORCH_CHECK(!dist_ || !config_.dp.enabled, "train: private training (dp) runs in one process: its accountant "
              "assumes one Poisson-sampled batch per step");
  TORCH_CHECK(!dist_ || dist_->device() == options_.device, "train: options.device ", options_.device,
              " differs from the process group's device ", dist_ ? dist_->device() : options_.device);
  TORCH_CHECK(!dist_ || config_.batch_size % dist_->world() == 0, "train: batch_size ", config_.batch_size,
              " must be divisible by the ", dist_ ? dist_->world() : 1, " workers (each takes an equal share)");
  make_dirs(options_.out_dir);
  if (options_.resume) {
    auto meta = read_checkpoint_meta(ckpt_);
    TORCH_CHECK(meta.at("config") == config_json_, ckpt_,
                ": --resume with a different configuration than the checkpoint's; use the same "
                "config and overrides, or a new --out folder");
    spec_ = spec_from_json(meta.at("spec"));  // e.g. the mean of the original run
    const std::string dtype = options_.dtype == torch::kDouble ? "float64" : "float32";
    TORCH_CHECK(meta.value("dtype", std::string("float32")) == dtype, ckpt_, ": --resume in ", dtype,
                " of a run trained in ", meta.value("dtype", std::string("float32")), "; resume in its precision");
    start_epoch_ = meta.at("epoch");
    start_batch_ = meta.at("batch");
  }
  torch::manual_seed(config_.seed);
  model_ = models::build_model(spec_);  // initialised on the CPU: the same weights on every device
  TORCH_CHECK(options_.dtype == torch::kFloat || options_.dtype == torch::kDouble,
              "train: dtype must be float32 or float64, got ", options_.dtype);
  model_->to(options_.device);
  // float64: every tensor, as load_model converts a float64 checkpoint (a float32 run keeps its integer
  // and float64 buffers: Module::to(dtype) would cast SortNet's step counter too)
  if (options_.dtype == torch::kDouble) model_->to(torch::kDouble);
  auto groups = parameter_groups(*model_, config_.optimizer);
  if (config_.loss.name == "mixture") {  // the learnable temperature of its cross-entropy term
    ce_scale_ = torch::ones({1}, torch::TensorOptions(options_.dtype).device(options_.device)).requires_grad_(true);
    groups[0].first.push_back(ce_scale_);
    extra_ = {{"ce_scale", ce_scale_}};
  }
  optimizer_ = make_optimizer(config_.optimizer, groups);
  for (auto& m : model_->modules()) {
    has_splines_ = has_splines_ || m->as<LinearSplineImpl>() != nullptr;
    has_dp_layers_ = has_dp_layers_ || m->as<DpLinearImpl>() != nullptr;
  }
  if (config_.dp.enabled)
    private_ = std::make_unique<detail::PrivateTraining>(config_, model_, train_data_.size(), spec_.num_classes,
                                                 options_.no_privacy);
  if (options_.resume) load_state(ckpt_, *model_, optimizer_.get(), extra_, options_.device);
  if (dist_) {
    dist_->broadcast(state_tensors());  // the same start on every rank, whatever each one read
    synchronize_means(true);
    std::vector<torch::Tensor> params;
    for (const auto& p : model_->parameters())
      if (p.defined() && p.requires_grad()) params.push_back(p);
    if (ce_scale_.defined()) params.push_back(ce_scale_);
    dist_->attach(params);
  }
  if (lead_) std::ofstream(options_.out_dir + "/config.json") << config_json_.dump(2) << "\n";
  data::LoaderOptions lo;
  lo.batch_size = config_.batch_size;
  lo.shuffle = true;
  lo.seed = config_.seed;
  lo.augment = config_.augment;
  if (private_) lo.poisson_rate = private_->sampling_rate();
  if (dist_) lo.shard = dist_->rank(), lo.shards = dist_->world();
  loader_ = std::make_unique<data::BatchLoader>(train_data_, lo);
  nb_ = loader_->batches_per_epoch();
  total_steps_ = nb_ * config_.epochs;
  if (private_) {
    private_->restore(start_epoch_ * nb_ + start_batch_);
    if (progress_)
      std::fprintf(stderr, "private training: Poisson rate q %.6g (%ld steps per epoch), noise multiplier %.6g, "
                   "budget epsilon %g at delta %g\n", private_->sampling_rate(), (long)nb_, private_->sigma(),
                   config_.dp.epsilon, config_.dp.delta);
  }
  tty_ = progress_ && ::isatty(STDERR_FILENO);
  // Distance nets (SortNet, l_inf-dist): p follows the schedule; evaluation is at p = inf.
  current_p_ = distance_p(config_.distance, 0.0);
  distance_net_ = set_distance_p(*model_, current_p_) > 0;
  // the hinge's eps is in pixels; the logits are 1-Lipschitz in the normalized input
  eps_scale_ = spec_.std.empty() ? 1.0 : 1.0 / *std::min_element(spec_.std.begin(), spec_.std.end());
}

bool Run::train_step(const data::Batch& cpu_batch, int64_t epoch, EpochStats& stats) {
  const auto& device = options_.device;
  const data::Batch batch{cpu_batch.x.to(device, options_.dtype), cpu_batch.y.to(device), cpu_batch.index};
  if (private_ && !private_->budget_allows_step()) return false;
  const int64_t step = epoch * nb_ + batch.index;
  const double factor = learning_rate(config_.schedule, 1.0, step, total_steps_);
  set_lr(*optimizer_, config_.optimizer, factor);
  const auto& ds = config_.distance;
  const double rho_p = phase_progress(ds.p_epochs_begin, ds.p_epochs_end, step, nb_);
  if (distance_net_ && distance_p(ds, rho_p) != current_p_) {
    current_p_ = distance_p(ds, rho_p);
    set_distance_p(*model_, current_p_);
  }
  LossState state;
  state.eps = config_.loss.eps * eps_scale_ *
              eps_fraction(phase_progress(ds.eps_epochs_begin, ds.eps_epochs_end, step, nb_), ds.eps_smooth);
  state.lam = config_.loss.lam0 * std::pow(config_.loss.lam_end / config_.loss.lam0, rho_p);
  state.ce_scale = ce_scale_;
  optimizer_->zero_grad();
  if (dist_) dist_->arm();
  const int64_t n = batch.y.size(0);
  if (n > 0) {  // a Poisson batch may be empty: it still gets its noise
    auto logits = model_->forward(batch.x);
    auto loss = compute_loss(config_.loss, logits, batch.y, state);
    if (config_.regularization.tv2 > 0) loss = loss + config_.regularization.tv2 * spline_tv2(*model_);
    const double lv = loss.item<double>();
    TORCH_CHECK(std::isfinite(lv), "train: loss is ", lv, " at epoch ", epoch + 1, " batch ", batch.index + 1,
                " (lr ", config_.optimizer.lr * factor, "); stopped. The last good checkpoint is ", ckpt_,
                "; lower optimizer.lr or check the data");
    (private_ ? loss * double(n) : loss).backward();  // private: the sum of per-example gradients
    stats.loss_sum += lv * n;
    stats.correct += (logits.argmax(1) == batch.y).sum().item<double>();
    stats.seen += n;
  }
  if (private_) private_->privatize(model_, step);
  if (dist_) synchronize_step();
  optimizer_->step();
  if (has_dp_layers_) dp::project(*model_);  // post-processing: keeps every DpLinear 1-Lipschitz
  return true;
}

// After backward, before the optimizer: every rank holds the gradient of the global batch (the bucket
// all-reduces started during backward, hooks set in resume_or_start).
// Buffers: power-iteration vectors (CPL, spectral) are updated by the same deterministic iteration on
// the same weights on every rank, and SortNet's step counters by one per forward on every rank, so they
// stay identical without communication; mean-shift layers normalise by the global batch's mean
// (synchronize_mean, set in resume_or_start), so their running means are the same on every rank too.
void Run::synchronize_step() { dist_->finish_gradients(); }

// Mean-shift layers normalise by the global batch's mean while training; off while rank 0 alone
// evaluates (its re-estimation runs those layers in training mode).
void Run::synchronize_means(bool on) {
  for (auto& m : model_->modules())
    if (auto* ms = m->as<MeanShiftImpl>()) {
      if (on) ms->synchronize_mean = [d = dist_.get()](const torch::Tensor& t) { return d->synchronized_mean(t); };
      else ms->synchronize_mean = nullptr;
    }
}

// Ctrl-C on any rank stops every rank at the same batch (one number all-reduced per batch).
bool Run::stop_agreed() {
  const bool mine = options_.stop_requested && options_.stop_requested();
  return dist_ ? dist_->sum(mine ? 1.0 : 0.0) > 0 : mine;
}

std::vector<torch::Tensor> Run::buffer_tensors() const {
  std::vector<torch::Tensor> out;
  for (const auto& b : model_->buffers())
    if (b.defined() && b.numel() > 0) out.push_back(b);
  return out;
}

std::vector<torch::Tensor> Run::state_tensors() const {
  auto out = buffer_tensors();
  for (const auto& p : model_->parameters()) out.push_back(p.detach());
  if (ce_scale_.defined()) out.push_back(ce_scale_.detach());
  return out;
}

bool Run::train_epoch(int64_t epoch, EpochStats& stats) {
  model_->train();
  loader_->start_epoch(epoch, epoch == start_epoch_ ? start_batch_ : 0);
  const auto e0 = Clock::now();
  const double comm0 = dist_ ? dist_->communication_seconds() : 0.0;
  data::Batch batch;
  while (loader_->next(batch)) {
    if (!train_step(batch, epoch, stats)) {
      budget_spent_ = true;
      break;
    }
    if (progress_) {
      const double secs = std::chrono::duration<double>(Clock::now() - e0).count();
      if (tty_ || batch.index + 1 == nb_ || (batch.index + 1) % 50 == 0)
        progress_line(tty_, epoch, config_.epochs, batch.index, nb_, stats.loss_sum / std::max(stats.seen, 1.0),
                      stats.correct / std::max(stats.seen, 1.0), workers() * stats.seen / std::max(secs, 1e-9));
    }
    if (stop_agreed() && batch.index + 1 < nb_) {
      if (lead_) save_checkpoint(ckpt_, *model_, optimizer_.get(), meta_for(epoch, batch.index + 1), extra_);
      if (tty_) std::fprintf(stderr, "\n");
      if (lead_) std::fprintf(stderr, "interrupted: checkpoint saved to %s (resume with --resume)\n", ckpt_.c_str());
      return false;
    }
  }
  if (tty_) std::fprintf(stderr, "\n");
  stats.seconds = std::chrono::duration<double>(Clock::now() - e0).count();
  stats.communication = dist_ ? dist_->communication_seconds() - comm0 : 0.0;
  return true;
}

// Certified accuracy for Lipschitz models; clean accuracy only for plain networks, whose bound is
// computed on demand (`lipkit certify --bound gram`). Distance nets are evaluated at p = inf with
// mean-shift statistics re-estimated on training images (the first 10,000 after each epoch, all of
// them after the last, so the final checkpoint certifies with exact statistics). Several processes:
// rank 0 re-estimates and broadcasts the statistics, every rank certifies its shard of the test set,
// and the counts are summed.
certify::CertifyResult Run::evaluate(bool final_epoch) {
  if (distance_net_) {
    if (lead_) {
      if (dist_) synchronize_means(false);  // the re-estimation's training-mode forwards stay local
      certify::reestimate_mean_shift(model_, final_epoch ? train_data_ : train_data_.head(10000));
      if (dist_) synchronize_means(true);
    }
    if (dist_) dist_->broadcast(buffer_tensors());
    set_distance_p(*model_, std::numeric_limits<double>::infinity());
  }
  const auto test = dist_ ? test_data_.shard(dist_->rank(), dist_->world()) : test_data_;
  auto r = spec_.family != "plain" ? certify_shard(test) : classify_shard(test);
  if (distance_net_) set_distance_p(*model_, current_p_);
  if (dist_) sum_counts(r, test_data_.size());
  return r;
}

certify::CertifyResult Run::certify_shard(const data::Dataset& test) {
  certify::CertifyOptions options;
  options.norm = config_.norm;
  options.radii = config_.radii;
  return certify::certify(model_, test, options);
}

certify::CertifyResult Run::classify_shard(const data::Dataset& test) {
  certify::CertifyResult r;
  r.total = test.size();
  model_->eval();
  torch::NoGradGuard no_grad;
  for (int64_t s0 = 0; s0 < test.size(); s0 += 500) {
    const int64_t len = std::min<int64_t>(500, test.size() - s0);
    auto x = data::to_float(test.images.narrow(0, s0, len)).to(options_.device, options_.dtype);
    auto pred = model_->forward(x).argmax(1);
    r.correct += (pred.cpu() == test.labels.narrow(0, s0, len)).sum().item<int64_t>();
  }
  return r;
}

// The whole test set's counts from every rank's shard (integers: exact in a double sum).
void Run::sum_counts(certify::CertifyResult& r, int64_t total) {
  auto sum = [&](int64_t& count) { count = std::llround(dist_->sum(static_cast<double>(count))); };
  r.total = total;
  sum(r.correct);
  for (auto* counts : {&r.certified, &r.certified_margin, &r.certified_interval})
    for (auto& c : *counts) sum(c);
  r.radius = torch::Tensor();  // per point: only this rank's shard
}

void Run::log_epoch(int64_t epoch, const EpochStats& stats, const certify::CertifyResult& cert) {
  nlohmann::json line = {{"epoch", epoch + 1},
                         {"train_loss", stats.loss_sum / std::max(stats.seen, 1.0)},
                         {"train_accuracy", stats.correct / std::max(stats.seen, 1.0)},
                         {"test_accuracy", cert.clean_accuracy()},
                         {"train_seconds", stats.seconds},
                         {"images_per_second", workers() * stats.seen / std::max(stats.seconds, 1e-9)}};
  if (dist_) {
    line["workers"] = dist_->world();
    line["communication_seconds"] = stats.communication;  // rank 0's time in all-reduces
  }
  if (distance_net_) line["p"] = std::isinf(current_p_) ? nlohmann::json("inf") : nlohmann::json(current_p_);
  if (has_splines_) {
    torch::NoGradGuard no_grad;
    line["tv2"] = spline_tv2(*model_).item<double>();  // the regulariser's value after the epoch
  }
  nlohmann::json certified = nlohmann::json::array();
  std::string cert_text;
  for (size_t i = 0; i < cert.radii.size(); ++i) {
    certified.push_back({{"radius", cert.radii[i]}, {"accuracy", cert.certified_accuracy(i)}});
    char buf[64];
    std::snprintf(buf, sizeof buf, " cert@%.3f %.3f", cert.radii[i], cert.certified_accuracy(i));
    cert_text += buf;
  }
  line["certified"] = certified;
  if (private_) {
    const double eps = private_->epsilon();
    line["epsilon"] = std::isinf(eps) ? nlohmann::json("inf") : nlohmann::json(eps);
    char buf[48];
    std::snprintf(buf, sizeof buf, " epsilon %.4g", eps);
    cert_text += buf;
  }
  if (has_splines_) {
    char buf[48];
    std::snprintf(buf, sizeof buf, " tv2 %.4g", line["tv2"].get<double>());
    cert_text += buf;
  }
  std::ofstream(options_.out_dir + "/metrics.jsonl", std::ios::app) << line.dump() << "\n" << std::flush;
  if (progress_)
    std::fprintf(stderr, "epoch %ld: test acc %.4f%s (%.1fs)\n", (long)epoch + 1, cert.clean_accuracy(),
                 cert_text.c_str(), stats.seconds);
}

TrainSummary Run::run() {
  const auto t0 = Clock::now();
  resume_or_start();
  summary_.epochs_done = start_epoch_;
  auto record = [&](const certify::CertifyResult& cert) {
    summary_.clean_accuracy = cert.clean_accuracy();
    summary_.certified_accuracy.clear();
    for (size_t i = 0; i < cert.radii.size(); ++i) summary_.certified_accuracy.push_back(cert.certified_accuracy(i));
  };
  if (start_epoch_ >= config_.epochs) record(evaluate(true));  // a finished run: report it, train nothing
  for (int64_t epoch = start_epoch_; epoch < config_.epochs; ++epoch) {
    EpochStats stats;
    if (!train_epoch(epoch, stats)) {
      summary_.interrupted = true;
      summary_.epochs_done = epoch;
      return summary_;
    }
    auto cert = evaluate(epoch + 1 == config_.epochs);  // every rank: its shard of the test set
    model_->train();
    if (lead_) {  // rank 0 writes and logs
      save_checkpoint(ckpt_, *model_, optimizer_.get(), meta_for(epoch + 1, 0), extra_);
      log_epoch(epoch, stats, cert);
    }
    record(cert);
    summary_.epochs_done = epoch + 1;
    if (budget_spent_) {
      if (progress_)
        std::fprintf(stderr, "privacy budget epsilon %g spent: stopped after epoch %ld\n", config_.dp.epsilon,
                     (long)epoch + 1);
      break;
    }
  }
  if (private_) summary_.epsilon = private_->epsilon();
  summary_.budget_spent = budget_spent_;
  summary_.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return summary_;
}

}  // namespace

TrainSummary train(const TrainConfig& config, const TrainOptions& options) {
  TORCH_CHECK(!options.out_dir.empty(), "train: an output folder is required");
  if (!config.table.path.empty()) {
    TORCH_CHECK(options.device.is_cpu() && options.dtype == torch::kFloat, "train: tabular training runs on the CPU "
                "in float32 (a run takes seconds), got device ", options.device, " and dtype ", options.dtype);
    return train_tabular(config, options);
  }
  return Run(config, options).run();
}

}  // namespace lipkit::train

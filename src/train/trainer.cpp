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
#include "lipkit/train/checkpoint.h"
#include "lipkit/train/reestimate.h"

namespace lipkit::train {

namespace {

using Clock = std::chrono::steady_clock;

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

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerSpec& o,
                                                        std::vector<torch::Tensor> params) {
  if (o.name == "sgd") {
    return std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(o.lr).momentum(o.momentum).nesterov(o.momentum > 0).weight_decay(o.weight_decay));
  }
  return std::make_unique<torch::optim::Adam>(
      params, torch::optim::AdamOptions(o.lr).betas({o.beta1, o.beta2}).weight_decay(o.weight_decay));
}

void set_lr(torch::optim::Optimizer& opt, double lr) {
  for (auto& g : opt.param_groups()) g.options().set_lr(lr);
}

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

}  // namespace

TrainSummary train(const TrainConfig& config, const TrainOptions& options) {
  TORCH_CHECK(!options.out_dir.empty(), "train: an output folder is required");
  const auto t0 = Clock::now();
  auto train_data = data::load_dataset(config.data, data::Split::Train).head(config.subset);
  auto test_data = data::load_dataset(config.data, data::Split::Test).head(config.subset);

  models::ModelSpec spec = config.model;
  spec.in_channels = train_data.channels();
  spec.image_size = train_data.height();
  spec.num_classes = train_data.num_classes;
  TORCH_CHECK(train_data.height() == train_data.width(), "train: square images expected, got ",
              train_data.height(), "x", train_data.width());
  spec.mean = data::channel_mean(train_data);
  // Distance nets divide by the data's pixel std, as the official code (weights start N(0, 1) in
  // that scale); the certificate accounts for it (InputNormalization's bound is 1 / std).
  if ((spec.family == "sortnet" || spec.family == "linfdist") && spec.std.empty())
    spec.std.assign(spec.in_channels, data::pixel_std(train_data));

  make_dirs(options.out_dir);
  const std::string ckpt = options.out_dir + "/model.pt";
  const nlohmann::json config_json = to_json(config);

  int64_t start_epoch = 0, start_batch = 0;
  nlohmann::json resumed_meta;
  if (options.resume) {
    resumed_meta = read_checkpoint_meta(ckpt);
    TORCH_CHECK(resumed_meta.at("config") == config_json, ckpt,
                ": --resume with a different configuration than the checkpoint's; use the same "
                "config and overrides, or a new --out folder");
    spec = spec_from_json(resumed_meta.at("spec"));  // e.g. the mean of the original run
    start_epoch = resumed_meta.at("epoch");
    start_batch = resumed_meta.at("batch");
  }

  torch::manual_seed(config.seed);
  auto model = models::build_model(spec);
  auto optimizer = make_optimizer(config.optimizer, model->parameters());
  if (options.resume) load_state(ckpt, *model, optimizer.get());
  {
    std::ofstream(options.out_dir + "/config.json") << config_json.dump(2) << "\n";
  }

  data::LoaderOptions lo;
  lo.batch_size = config.batch_size;
  lo.shuffle = true;
  lo.seed = config.seed;
  lo.augment = config.augment;
  data::BatchLoader loader(train_data, lo);
  const int64_t nb = loader.batches_per_epoch();
  const int64_t total_steps = nb * config.epochs;
  const bool tty = options.progress && ::isatty(STDERR_FILENO);

  auto meta_for = [&](int64_t epoch, int64_t batch) {
    return nlohmann::json{{"config", config_json}, {"spec", spec_to_json(spec)},
                          {"epoch", epoch},        {"batch", batch},
                          {"data", train_data.name}};
  };

  TrainSummary summary;
  summary.epochs_done = start_epoch;
  // Distance nets (SortNet, l_inf-dist): p follows the schedule; evaluation is at p = inf with
  // mean-shift statistics re-estimated on training images (the first 10,000 after each epoch, all
  // of them after the last, so the final checkpoint certifies with exact statistics).
  const bool distance_net = set_distance_p(*model, distance_p(config.distance, 0.0)) > 0;
  double current_p = distance_p(config.distance, 0.0);
  torch::Tensor ce_scale;
  for (auto& m : model->modules(false))
    if (auto* neg = m->as<NegatedDistanceImpl>()) ce_scale = neg->scale;
  const Norm eval_norm = config.norm == "linf" ? Norm::Linf : Norm::L2;
  // the hinge's eps is in pixels; the logits are 1-Lipschitz in the normalized input
  const double eps_scale = spec.std.empty() ? 1.0 : 1.0 / *std::min_element(spec.std.begin(), spec.std.end());

  // Per-epoch evaluation: certified accuracy for Lipschitz models; clean accuracy only for plain
  // networks, whose bound is computed on demand (`lipkit certify --bound gram`).
  auto evaluate = [&](torch::nn::Sequential& m, const data::Dataset& d, bool final_epoch = false) {
    if (distance_net) {
      reestimate_mean_shift(m, final_epoch ? train_data : train_data.head(10000));
      set_distance_p(*m, std::numeric_limits<double>::infinity());
      auto r = certify::certify(m, d, eval_norm, config.radii);
      set_distance_p(*m, current_p);
      return r;
    }
    if (spec.family != "plain") return certify::certify(m, d, eval_norm, config.radii);
    certify::CertifyResult r;
    r.total = d.size();
    m->eval();
    torch::NoGradGuard no_grad;
    for (int64_t s0 = 0; s0 < d.size(); s0 += 500) {
      const int64_t len = std::min<int64_t>(500, d.size() - s0);
      auto pred = m->forward(data::to_float(d.images.narrow(0, s0, len))).argmax(1);
      r.correct += (pred == d.labels.narrow(0, s0, len)).sum().item<int64_t>();
    }
    return r;
  };
  if (start_epoch >= config.epochs) {  // resuming a finished run: report it, train nothing
    auto cert = evaluate(model, test_data, true);
    summary.clean_accuracy = cert.clean_accuracy();
    for (size_t i = 0; i < cert.radii.size(); ++i) summary.certified_accuracy.push_back(cert.certified_accuracy(i));
  }
  std::ofstream metrics(options.out_dir + "/metrics.jsonl", std::ios::app);
  for (int64_t epoch = start_epoch; epoch < config.epochs; ++epoch) {
    model->train();
    loader.start_epoch(epoch, epoch == start_epoch ? start_batch : 0);
    double loss_sum = 0, correct = 0, seen = 0;
    const auto e0 = Clock::now();
    data::Batch batch;
    while (loader.next(batch)) {
      const int64_t step = epoch * nb + batch.index;
      set_lr(*optimizer, learning_rate(config.schedule, config.optimizer.lr, step, total_steps));
      const double rho_p = phase_progress(config.distance.p_epochs_begin, config.distance.p_epochs_end, step, nb);
      if (distance_net && distance_p(config.distance, rho_p) != current_p) {
        current_p = distance_p(config.distance, rho_p);
        set_distance_p(*model, current_p);
      }
      LossState state;
      state.eps = config.loss.eps * eps_scale *
                  eps_fraction(phase_progress(config.distance.eps_epochs_begin, config.distance.eps_epochs_end,
                                              step, nb),
                               config.distance.eps_smooth);
      state.lam = config.loss.lam0 * std::pow(config.loss.lam_end / config.loss.lam0, rho_p);
      state.ce_scale = ce_scale;
      optimizer->zero_grad();
      auto logits = model->forward(batch.x);
      auto loss = compute_loss(config.loss, logits, batch.y, state);
      const double lv = loss.item<double>();
      TORCH_CHECK(std::isfinite(lv), "train: loss is ", lv, " at epoch ", epoch + 1, " batch ",
                  batch.index + 1, " (lr ", learning_rate(config.schedule, config.optimizer.lr, step, total_steps),
                  "); stopped. The last good checkpoint is ", ckpt,
                  "; lower optimizer.lr or check the data");
      loss.backward();
      optimizer->step();
      loss_sum += lv * batch.y.size(0);
      correct += (logits.argmax(1) == batch.y).sum().item<double>();
      seen += batch.y.size(0);
      if (options.progress) {
        const double secs = std::chrono::duration<double>(Clock::now() - e0).count();
        if (tty || batch.index + 1 == nb || (batch.index + 1) % 50 == 0)
          progress_line(tty, epoch, config.epochs, batch.index, nb, loss_sum / seen, correct / seen,
                        seen / std::max(secs, 1e-9));
      }
      if (options.stop_requested && options.stop_requested() && batch.index + 1 < nb) {
        save_checkpoint(ckpt, *model, optimizer.get(), meta_for(epoch, batch.index + 1));
        if (tty) std::fprintf(stderr, "\n");
        std::fprintf(stderr, "interrupted: checkpoint saved to %s (resume with --resume)\n", ckpt.c_str());
        summary.interrupted = true;
        summary.epochs_done = epoch;
        return summary;
      }
    }
    if (tty) std::fprintf(stderr, "\n");
    const double train_secs = std::chrono::duration<double>(Clock::now() - e0).count();

    auto cert = evaluate(model, test_data, epoch + 1 == config.epochs);
    model->train();
    save_checkpoint(ckpt, *model, optimizer.get(), meta_for(epoch + 1, 0));

    nlohmann::json line = {{"epoch", epoch + 1},
                           {"train_loss", loss_sum / std::max(seen, 1.0)},
                           {"train_accuracy", correct / std::max(seen, 1.0)},
                           {"test_accuracy", cert.clean_accuracy()},
                           {"train_seconds", train_secs},
                           {"images_per_second", seen / std::max(train_secs, 1e-9)}};
    if (distance_net) line["p"] = std::isinf(current_p) ? nlohmann::json("inf") : nlohmann::json(current_p);
    nlohmann::json certified = nlohmann::json::array();
    std::string cert_text;
    for (size_t i = 0; i < cert.radii.size(); ++i) {
      certified.push_back({{"radius", cert.radii[i]}, {"accuracy", cert.certified_accuracy(i)}});
      char buf[64];
      std::snprintf(buf, sizeof buf, " cert@%.3f %.3f", cert.radii[i], cert.certified_accuracy(i));
      cert_text += buf;
    }
    line["certified"] = certified;
    metrics << line.dump() << "\n" << std::flush;
    if (options.progress) {
      std::fprintf(stderr, "epoch %ld: test acc %.4f%s (%.1fs)\n", (long)epoch + 1,
                   cert.clean_accuracy(), cert_text.c_str(), train_secs);
    }
    summary.clean_accuracy = cert.clean_accuracy();
    summary.certified_accuracy.clear();
    for (size_t i = 0; i < cert.radii.size(); ++i) summary.certified_accuracy.push_back(cert.certified_accuracy(i));
    summary.epochs_done = epoch + 1;
  }
  summary.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return summary;
}

}  // namespace lipkit::train

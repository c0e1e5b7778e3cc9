#include "lipkit/data/idx.h"

#include <torch/torch.h>
#include <zlib.h>

#include <memory>
#include <sys/stat.h>

namespace lipkit::data {

namespace {

struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};
using GzPtr = std::unique_ptr<gzFile_s, GzCloser>;

// Reads exactly n bytes; returns how many were read (fewer means the file ended early).
int64_t read_bytes(gzFile f, uint8_t* dst, int64_t n, const std::string& path) {
  int64_t done = 0;
  while (done < n) {
    const unsigned chunk = static_cast<unsigned>(std::min<int64_t>(n - done, 1 << 30));
    const int got = gzread(f, dst + done, chunk);
    if (got < 0) {
      int err = 0;
      const char* msg = gzerror(f, &err);
      TORCH_CHECK(false, "read_idx(", path, "): corrupt data at byte ", done, ": ", msg);
    }
    if (got == 0) break;
    done += got;
  }
  return done;
}

uint32_t big_endian(const uint8_t* b) {
  return (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | uint32_t(b[3]);
}

}  // namespace

torch::Tensor read_idx(const std::string& path) {
  struct stat st {};
  TORCH_CHECK(::stat(path.c_str(), &st) == 0, "read_idx(", path, "): cannot open file");
  GzPtr f(gzopen(path.c_str(), "rb"));
  TORCH_CHECK(f, "read_idx(", path, "): cannot open file");
  uint8_t magic[4];
  TORCH_CHECK(read_bytes(f.get(), magic, 4, path) == 4, "read_idx(", path,
              "): file truncated in the 4-byte magic number");
  TORCH_CHECK(magic[0] == 0 && magic[1] == 0, "read_idx(", path,
              "): not an IDX file (magic number must start with two zero bytes, got 0x", std::hex,
              int(magic[0]), " 0x", int(magic[1]), ")");
  TORCH_CHECK(magic[2] == 0x08, "read_idx(", path, "): data type 0x", std::hex, int(magic[2]),
              " not supported (only 0x08, unsigned byte)");
  const int dims = magic[3];
  TORCH_CHECK(dims >= 1 && dims <= 4, "read_idx(", path, "): ", dims,
              " dimensions in the magic number, expected 1 to 4");
  std::vector<uint8_t> header(4 * dims);
  TORCH_CHECK(read_bytes(f.get(), header.data(), 4 * dims, path) == 4 * dims, "read_idx(", path,
              "): file truncated in the dimension header");
  std::vector<int64_t> shape;
  int64_t total = 1;
  for (int d = 0; d < dims; ++d) {
    const int64_t n = big_endian(&header[4 * d]);
    TORCH_CHECK(n > 0 && n < (int64_t(1) << 31), "read_idx(", path, "): dimension ", d, " is ", n);
    shape.push_back(n);
    total *= n;
  }
  TORCH_CHECK(total < (int64_t(1) << 34), "read_idx(", path, "): header promises ", total,
              " bytes, too large");
  auto out = torch::empty(shape, torch::kUInt8);
  const int64_t got = read_bytes(f.get(), out.data_ptr<uint8_t>(), total, path);
  TORCH_CHECK(got == total, "read_idx(", path, "): file truncated: header promises ", total,
              " data bytes after the ", 4 + 4 * dims, "-byte header, found ", got);
  uint8_t extra;
  TORCH_CHECK(read_bytes(f.get(), &extra, 1, path) == 0, "read_idx(", path,
              "): trailing bytes after the ", total, " data bytes the header promises");
  return out;
}

Dataset read_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         int64_t num_classes, const std::string& name) {
  auto images = read_idx(images_path);
  auto labels = read_idx(labels_path);
  TORCH_CHECK(images.dim() == 3, "read_idx(", images_path,
              "): expected an images file with 3 dimensions (N, H, W), got ", images.dim());
  TORCH_CHECK(labels.dim() == 1, "read_idx(", labels_path,
              "): expected a labels file with 1 dimension (N), got ", labels.dim());
  TORCH_CHECK(images.size(0) == labels.size(0), "read_idx: ", images_path, " holds ",
              images.size(0), " images but ", labels_path, " holds ", labels.size(0), " labels");
  const int64_t max_label = labels.max().item<int64_t>();
  TORCH_CHECK(max_label < num_classes, "read_idx(", labels_path, "): label ", max_label,
              " out of range for ", num_classes, " classes (at index ",
              labels.argmax().item<int64_t>(), ")");
  Dataset d;
  d.name = name;
  d.images = images.unsqueeze(1).contiguous();
  d.labels = labels.to(torch::kLong);
  d.num_classes = num_classes;
  return d;
}

void write_idx(const std::string& path, const torch::Tensor& data) {
  TORCH_CHECK(data.scalar_type() == torch::kUInt8 && data.dim() >= 1 && data.dim() <= 4,
              "write_idx(", path, "): expected a uint8 tensor with 1 to 4 dims");
  const bool gz = path.size() > 3 && path.substr(path.size() - 3) == ".gz";
  GzPtr f(gzopen(path.c_str(), gz ? "wb" : "wbT"));  // T: write uncompressed
  TORCH_CHECK(f, "write_idx(", path, "): cannot create file");
  std::vector<uint8_t> header{0, 0, 0x08, static_cast<uint8_t>(data.dim())};
  for (int64_t d = 0; d < data.dim(); ++d) {
    const auto n = static_cast<uint32_t>(data.size(d));
    header.insert(header.end(), {uint8_t(n >> 24), uint8_t(n >> 16), uint8_t(n >> 8), uint8_t(n)});
  }
  auto c = data.contiguous();
  TORCH_CHECK(gzwrite(f.get(), header.data(), header.size()) == int(header.size()) &&
                  gzwrite(f.get(), c.data_ptr<uint8_t>(), c.numel()) == int(c.numel()),
              "write_idx(", path, "): write failed");
}

}  // namespace lipkit::data

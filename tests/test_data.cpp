// Readers round-trip what they are given and reject every corrupt file with a message naming it.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "lipkit/data/cifar.h"
#include "lipkit/data/csv.h"
#include "lipkit/data/dataset.h"
#include "lipkit/data/idx.h"
#include "lipkit/data/loader.h"
#include "support/expect_error.h"
#include "support/synthetic_data.h"

using namespace lipkit::data;
using lipkit::testing::fresh_dir;

namespace {

using lipkit::testing::expect_error;

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

TEST(Idx, RoundTripRawAndGzip) {
  const auto dir = fresh_dir("idx_rt");
  auto images = torch::randint(0, 256, {7, 5, 4}, torch::kLong).to(torch::kUInt8);
  for (const std::string name : {"/a-idx3-ubyte", "/a-idx3-ubyte.gz"}) {
    write_idx(dir + name, images);
    EXPECT_TRUE(torch::equal(read_idx(dir + name), images)) << name;
  }
  write_idx(dir + "/l.gz", torch::tensor({1, 2, 3, 9, 0, 4, 5}, torch::kUInt8));
  auto d = read_idx_dataset(dir + "/a-idx3-ubyte.gz", dir + "/l.gz", 10, "mnist");
  EXPECT_EQ(d.images.sizes(), torch::IntArrayRef({7, 1, 5, 4}));
  EXPECT_EQ(d.labels[3].item<int64_t>(), 9);
}

TEST(Idx, CorruptMagicNamesTheFile) {
  const auto dir = fresh_dir("idx_magic");
  write_bytes(dir + "/bad", {0x12, 0x34, 0x08, 0x01, 0, 0, 0, 1, 7});
  expect_error([&] { read_idx(dir + "/bad"); }, {dir + "/bad", "not an IDX file"});
  write_bytes(dir + "/float", {0, 0, 0x0D, 0x01, 0, 0, 0, 1, 0, 0, 0, 0});
  expect_error([&] { read_idx(dir + "/float"); }, {dir + "/float", "not supported"});
}

TEST(Idx, TruncatedFileSaysHowMuchIsMissing) {
  const auto dir = fresh_dir("idx_trunc");
  write_idx(dir + "/x", torch::zeros({10, 4, 4}, torch::kUInt8));
  auto bytes = read_bytes(dir + "/x");
  bytes.resize(bytes.size() - 20);
  write_bytes(dir + "/x", bytes);
  expect_error([&] { read_idx(dir + "/x"); }, {dir + "/x", "truncated", "160", "140"});
  // gzip stream cut short
  write_idx(dir + "/y.gz", torch::randint(0, 256, {50, 8, 8}, torch::kLong).to(torch::kUInt8));
  auto gz = read_bytes(dir + "/y.gz");
  gz.resize(gz.size() / 2);
  write_bytes(dir + "/y.gz", gz);
  expect_error([&] { read_idx(dir + "/y.gz"); }, {dir + "/y.gz"});
  // trailing garbage
  write_idx(dir + "/z", torch::zeros({2, 2}, torch::kUInt8));
  auto z = read_bytes(dir + "/z");
  z.push_back(1);
  write_bytes(dir + "/z", z);
  expect_error([&] { read_idx(dir + "/z"); }, {dir + "/z", "trailing bytes"});
}

TEST(Idx, LabelOutOfRangeAndCountMismatch) {
  const auto dir = fresh_dir("idx_labels");
  write_idx(dir + "/img", torch::zeros({3, 2, 2}, torch::kUInt8));
  write_idx(dir + "/lab", torch::tensor({1, 10, 2}, torch::kUInt8));
  expect_error([&] { read_idx_dataset(dir + "/img", dir + "/lab", 10, "mnist"); },
               {dir + "/lab", "label 10 out of range", "index 1"});
  write_idx(dir + "/lab2", torch::tensor({1, 2}, torch::kUInt8));
  expect_error([&] { read_idx_dataset(dir + "/img", dir + "/lab2", 10, "mnist"); },
               {"3 images", "2 labels"});
}

std::vector<uint8_t> cifar_records(int64_t n, bool cifar100, uint8_t label) {
  std::vector<uint8_t> out;
  for (int64_t i = 0; i < n; ++i) {
    if (cifar100) out.push_back(3);  // coarse label
    out.push_back(static_cast<uint8_t>((label + i) % (cifar100 ? 100 : 10)));
    for (int p = 0; p < 3072; ++p) out.push_back(static_cast<uint8_t>((p + i) % 251));
  }
  return out;
}

TEST(Cifar, ReadsTheOfficialLayout) {
  const auto dir = fresh_dir("cifar");
  write_bytes(dir + "/a.bin", cifar_records(3, false, 4));
  write_bytes(dir + "/b.bin", cifar_records(2, false, 9));
  auto d = read_cifar({dir + "/a.bin", dir + "/b.bin"}, false, "cifar10");
  EXPECT_EQ(d.images.sizes(), torch::IntArrayRef({5, 3, 32, 32}));
  EXPECT_EQ(d.labels[1].item<int64_t>(), 5);
  EXPECT_EQ(d.labels[4].item<int64_t>(), 0);  // (9 + 1) % 10
  EXPECT_EQ(d.images[1][0][0][1].item<uint8_t>(), 2);  // pixel p=1 of record i=1: (1+1) % 251, red plane
  EXPECT_EQ(d.images[0][1][0][0].item<uint8_t>(), 1024 % 251);  // green plane starts at byte 1024
  write_bytes(dir + "/c.bin", cifar_records(2, true, 97));
  auto c100 = read_cifar({dir + "/c.bin"}, true, "cifar100");
  EXPECT_EQ(c100.num_classes, 100);
  EXPECT_EQ(c100.labels[1].item<int64_t>(), 98);
}

TEST(Cifar, WrongRecordSizeAndLabelRange) {
  const auto dir = fresh_dir("cifar_bad");
  auto bytes = cifar_records(2, false, 0);
  bytes.resize(bytes.size() - 5);
  write_bytes(dir + "/t.bin", bytes);
  expect_error([&] { read_cifar({dir + "/t.bin"}, false, "cifar10"); },
               {dir + "/t.bin", "multiple of the 3073-byte"});
  write_bytes(dir + "/c100.bin", cifar_records(3, true, 50));  // 3074-byte records read as CIFAR-10
  expect_error([&] { read_cifar({dir + "/c100.bin"}, false, "cifar10"); }, {dir + "/c100.bin"});
  auto bad = cifar_records(1, false, 0);
  bad[0] = 12;
  write_bytes(dir + "/l.bin", bad);
  expect_error([&] { read_cifar({dir + "/l.bin"}, false, "cifar10"); }, {dir + "/l.bin", "label 12"});
}

TEST(Registry, FindsDataSetsByFolderAndRejectsUnknownNames) {
  const auto dir = lipkit::testing::write_synthetic_mnist(fresh_dir("registry"), 30, 20);
  EXPECT_EQ(dataset_name(dir), "mnist");
  auto train = load_dataset(dir, Split::Train);
  auto test = load_dataset(dir, Split::Test);
  EXPECT_EQ(train.size(), 30);
  EXPECT_EQ(test.size(), 20);
  EXPECT_EQ(test.head(5).size(), 5);
  expect_error([] { load_dataset("imagenet", Split::Train); }, {"unknown data set 'imagenet'"});
  const auto empty = fresh_dir("registry_empty");
  expect_error([&] { load_dataset(empty, Split::Train); }, {empty, "holds no known data set"});
}

// Distributed evaluation: the ranks' shards are the whole set, in order, sizes within one.
TEST(Registry, ShardsPartitionTheSetInOrder) {
  auto test = load_dataset(lipkit::testing::write_synthetic_mnist(fresh_dir("shards"), 10, 23), Split::Test);
  for (const int64_t n : {1, 2, 3, 5, 30}) {
    std::vector<torch::Tensor> labels;
    for (int64_t k = 0; k < n; ++k) {
      const auto s = test.shard(k, n);
      EXPECT_LE(std::abs(s.size() - test.size() / n), 1) << k << " of " << n;
      labels.push_back(s.labels);
    }
    EXPECT_TRUE(torch::equal(torch::cat(labels), test.labels)) << n << " shards";
  }
  expect_error([&] { test.shard(2, 2); }, {"part 2 of 2"});
}

TEST(Transforms, AugmentationIsSeededAndKeepsShapes) {
  auto x = torch::rand({6, 2, 8, 8});
  Augment aug;
  aug.crop_padding = 2;
  aug.flip = true;
  auto a = augment(x, aug, 42), b = augment(x, aug, 42), c = augment(x, aug, 43);
  EXPECT_EQ(a.sizes(), x.sizes());
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
  EXPECT_FALSE(torch::equal(a, x));
  EXPECT_TRUE(torch::equal(augment(x, Augment{}, 1), x));  // disabled: identity
}

TEST(Loader, OrderDependsOnlyOnSeedAndEpochAndResumesMidEpoch) {
  const auto dir = lipkit::testing::write_synthetic_mnist(fresh_dir("loader"), 50, 10);
  auto d = load_dataset(dir, Split::Train);
  LoaderOptions o;
  o.batch_size = 8;
  o.shuffle = true;
  o.seed = 7;
  o.augment.crop_padding = 1;
  BatchLoader full(d, o), resumed(d, o);
  full.start_epoch(3);
  resumed.start_epoch(3, 4);
  std::vector<Batch> all;
  Batch b;
  while (full.next(b)) all.push_back(b);
  EXPECT_EQ(all.size(), 7u);
  EXPECT_EQ(all.back().y.size(0), 2);
  for (size_t i = 4; i < all.size(); ++i) {
    ASSERT_TRUE(resumed.next(b));
    EXPECT_EQ(b.index, static_cast<int64_t>(i));
    EXPECT_TRUE(torch::equal(b.x, all[i].x));
    EXPECT_TRUE(torch::equal(b.y, all[i].y));
  }
  EXPECT_FALSE(resumed.next(b));
  full.start_epoch(4);
  ASSERT_TRUE(full.next(b));
  EXPECT_FALSE(torch::equal(b.y, all[0].y));  // another epoch, another order
}

}  // namespace

namespace {

TEST(Csv, ReadsLabelPixelRowsWithOptionalHeader) {
  const auto dir = fresh_dir("csv");
  std::ofstream(dir + "/t.csv") << "label,p0,p1,p2,p3\n3,0,255,7,8\r\n9,1,2,3,4\n";
  auto d = read_csv_images(dir + "/t.csv", 1, 2, 2, 10, "mnist");
  EXPECT_EQ(d.images.sizes(), torch::IntArrayRef({2, 1, 2, 2}));
  EXPECT_EQ(d.labels[1].item<int64_t>(), 9);
  EXPECT_EQ(d.images[0][0][0][1].item<uint8_t>(), 255);
}

TEST(Csv, BadRowsNameFileLineAndColumn) {
  const auto dir = fresh_dir("csv_bad");
  std::ofstream(dir + "/cols.csv") << "1,2,3,4,5\n1,2,3\n";
  expect_error([&] { read_csv_images(dir + "/cols.csv", 1, 2, 2, 10, "m"); },
               {dir + "/cols.csv", "line 2", "3 columns, expected 5"});
  std::ofstream(dir + "/pix.csv") << "1,2,3,300,5\n";
  expect_error([&] { read_csv_images(dir + "/pix.csv", 1, 2, 2, 10, "m"); },
               {dir + "/pix.csv", "line 1", "column 4", "'300'"});
  std::ofstream(dir + "/lab.csv") << "12,2,3,4,5\n";
  expect_error([&] { read_csv_images(dir + "/lab.csv", 1, 2, 2, 10, "m"); }, {"line 1", "label '12'"});
  std::ofstream(dir + "/txt.csv") << "1,2,x,4,5\n";
  expect_error([&] { read_csv_images(dir + "/txt.csv", 1, 2, 2, 10, "m"); }, {"column 3", "'x'"});
}

}  // namespace

// The tabular reader: CSV (header, quoting) and JSON records, one-hot categories, missing values,
// errors naming file, line and column, reading by a saved schema, the split and standardisation.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "lipkit/data/tabular.h"
#include "support/expect_error.h"
#include "support/synthetic_data.h"

using namespace lipkit;

namespace {

std::string write(const std::string& name, const std::string& text) {
  const auto path = lipkit::testing::fresh_dir("tabular_" + name) + "/" + name;  // a folder per file: fresh_dir empties it
  std::ofstream(path) << text;
  return path;
}

data::TabularOptions target(const std::string& t) {
  data::TabularOptions o;
  o.target = t;
  return o;
}

TEST(Tabular, CsvWithQuotesAndCategoriesIsEncodedByName) {
  const auto path = write("cars.csv",
                          "name,mpg,weight,origin\n"
                          "\"ford, \"\"torino\"\"\",17,3449,USA\r\n"
                          "vw rabbit , 29 ,1937, Europe\n"
                          "\n"
                          "toyota,24,2372,Japan\n");
  data::TabularOptions o = target("mpg");
  o.features = {"weight", "origin"};
  auto t = data::read_table(path, o);
  ASSERT_EQ(t.feature_names, (std::vector<std::string>{"weight", "origin=Europe", "origin=Japan", "origin=USA"}));
  EXPECT_TRUE(torch::equal(t.y, torch::tensor({17.0, 29.0, 24.0}, torch::kDouble)));
  EXPECT_TRUE(torch::equal(t.x[0], torch::tensor({3449.0, 0.0, 0.0, 1.0}, torch::kDouble)));
  EXPECT_TRUE(torch::equal(t.x[1], torch::tensor({1937.0, 1.0, 0.0, 0.0}, torch::kDouble)));
  // every other column when no features are named: the quoted name is a category with its comma
  auto all = data::read_table(path, target("mpg"));
  EXPECT_EQ(all.columns[0].categories[0], "ford, \"torino\"");
  // a file with its columns in another order and fewer rows, read by the saved schema
  const auto other = write("new.csv", "origin,weight\nJapan,2000\nUSA,4000\n");
  auto p = data::read_table(other, o, &t.columns, /*require_target=*/false);
  EXPECT_FALSE(p.y.defined());
  EXPECT_TRUE(torch::equal(p.x, torch::tensor({{2000.0, 0.0, 1.0, 0.0}, {4000.0, 0.0, 0.0, 1.0}}, torch::kDouble)));
  const auto unseen = write("unseen.csv", "origin,weight\nMars,2000\n");
  lipkit::testing::expect_error([&] { data::read_table(unseen, o, &t.columns, false); },
                                {"unseen.csv", "line 2", "origin", "unknown category 'Mars'"});
}

TEST(Tabular, JsonRecordsAsVegaDatasetsShipsThem) {
  const auto path = write("cars.json",
                          R"([{"Name":"a","Miles_per_Gallon":18,"Horsepower":130,"Origin":"USA"},
                              {"Name":"b","Miles_per_Gallon":null,"Horsepower":165,"Origin":"USA"},
                              {"Name":"c","Miles_per_Gallon":24,"Horsepower":null,"Origin":"Japan"}])");
  data::TabularOptions o = target("Miles_per_Gallon");
  o.features = {"Horsepower", "Origin"};
  lipkit::testing::expect_error([&] { data::read_table(path, o); }, {"cars.json", "record 2", "Miles_per_Gallon", "missing"});
  o.missing = "drop";
  auto t = data::read_table(path, o);
  EXPECT_EQ(t.x.size(0), 1);  // records 2 and 3 each miss a used value
  EXPECT_TRUE(torch::equal(t.x[0], torch::tensor({130.0, 0.0, 1.0}, torch::kDouble)));
}

TEST(Tabular, ErrorsNameFileLineAndColumn) {
  using lipkit::testing::expect_error;
  const auto counts = write("counts.csv", "a,b,y\n1,2,3\n4,5\n");
  expect_error([&] { data::read_table(counts, target("y")); }, {"counts.csv", "line 3", "2 fields", "header has 3"});
  const auto text = write("text.csv", "a,b,y\n1,2,3\n4,five,6\n");
  expect_error([&] { data::read_table(text, target("y")); }, {"text.csv", "line 3", "column 'b'", "'five' is not a number"});
  const auto missing = write("missing.csv", "a,b,y\n1,,3\n");
  expect_error([&] { data::read_table(missing, target("y")); }, {"missing.csv", "line 2", "column 'b'", "missing value"});
  const auto ok = write("ok.csv", "a,b,y\n1,2,3\n");
  expect_error([&] { data::read_table(ok, target("mpg")); }, {"ok.csv", "no column 'mpg'", "a, b, y"});
  const auto quote = write("quote.csv", "a,y\n\"open,1\n");
  expect_error([&] { data::read_table(quote, target("y")); }, {"quote.csv", "line 2", "never closed"});
  const auto bad_target = write("target.csv", "a,y\n1,high\n");
  expect_error([&] { data::read_table(bad_target, target("y")); }, {"target.csv", "line 2", "target", "'high'"});
}

TEST(Tabular, IsoDatesAreDecimalYears) {
  const auto dates = write("dates.csv", "year,y\n1970-01-01,1\n1982-07-01,2\n");
  auto t = data::read_table(dates, target("y"));
  ASSERT_TRUE(t.columns[0].categories.empty()) << "a date column is numeric";
  EXPECT_DOUBLE_EQ(t.x[0][0].item<double>(), 1970.0);
  EXPECT_DOUBLE_EQ(t.x[1][0].item<double>(), 1982.5);
  const auto not_dates = write("notdates.csv", "code,y\n1970-13-01,1\n12345-6-78,2\n");
  EXPECT_EQ(data::read_table(not_dates, target("y")).columns[0].categories.size(), 2u) << "month 13 is no date";
}

TEST(Tabular, ClassTargetsAreIndexedAndUnknownClassesNamed) {
  data::TabularOptions o = target("y");
  o.class_target = true;
  const auto numeric = write("classes.csv", "a,y\n1,10\n2,2\n3,2.0\n4,1\n");
  auto t = data::read_table(numeric, o);
  EXPECT_EQ(t.classes, (std::vector<std::string>{"1", "2", "10"})) << "numbers sort numerically; 2 and 2.0 are one";
  EXPECT_TRUE(torch::equal(t.y, torch::tensor({2.0, 1.0, 1.0, 0.0}, torch::kDouble)));
  const auto text = write("labels.csv", "a,y\n1,yes\n2,no\n");
  EXPECT_EQ(data::read_table(text, o).classes, (std::vector<std::string>{"no", "yes"}));
  o.classes = {"no", "yes"};
  const auto unseen = write("unseen.csv", "a,y\n1,yes\n2,maybe\n");
  lipkit::testing::expect_error([&] { data::read_table(unseen, o); },
                                {"unseen.csv", "line 3", "target column 'y'", "unknown class 'maybe'"});
}

TEST(Tabular, SplitIsSeededAndDisjointAndStandardisationUsesTheTrainingRows) {
  data::Table t;
  t.x = torch::arange(40, torch::kDouble).view({20, 2});
  t.y = torch::arange(20, torch::kDouble);
  auto [train, test] = data::split_table(t, 0.25, 7);
  EXPECT_EQ(train.x.size(0), 15);
  EXPECT_EQ(test.x.size(0), 5);
  auto all = std::get<0>(torch::cat({train.y, test.y}).sort());
  EXPECT_TRUE(torch::equal(all, t.y)) << "every row in exactly one part";
  EXPECT_TRUE(torch::equal(data::split_table(t, 0.25, 7).second.y, test.y)) << "same seed, same split";
  EXPECT_FALSE(torch::equal(data::split_table(t, 0.25, 8).second.y, test.y));
  auto s = data::fit_standardization(train.x);
  EXPECT_TRUE(torch::allclose(s.mean, train.x.mean(0)));
  EXPECT_FALSE(torch::allclose(s.mean, t.x.mean(0))) << "statistics of the training rows only";
  auto constant = data::fit_standardization(torch::ones({5, 2}, torch::kDouble));
  EXPECT_TRUE(torch::equal(constant.std, torch::ones({2}, torch::kDouble)));
}

}  // namespace

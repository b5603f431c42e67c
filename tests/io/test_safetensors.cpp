#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "scratchnet/check.h"
#include "scratchnet/io/safetensors.h"

namespace scratchnet {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Little-endian bytes of each value, as they lie in a safetensors data region.
template <typename T>
std::string le_bytes(const std::vector<T>& values) {
  std::string out(values.size() * sizeof(T), '\0');
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

// The file layout: 8-byte little-endian header length, header text, data.
std::string file_bytes(const std::string& header, const std::string& data) {
  std::string out;
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return out + header + data;
}

// The header as tools/goldens_common.py's save_safetensors writes it: compact JSON padded
// with spaces to a multiple of 8.
std::string padded(std::string header) {
  header.append((8 - header.size() % 8) % 8, ' ');
  return header;
}

uint32_t bits(float v) {
  uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

void expect_same_tensor(const Tensor& got, const Tensor& want, const std::string& name) {
  SCOPED_TRACE(name);
  ASSERT_EQ(got.shape(), want.shape());
  for (int64_t i = 0; i < want.numel(); ++i) EXPECT_EQ(bits(got[i]), bits(want[i])) << "at " << i;
}

class SafeTensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) / ("scratchnet_safetensors_" + std::string(info->name()) +
                                             "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::string write_file(const std::string& name, const std::string& bytes) const {
    std::string p = path(name);
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  // A file with the given header text (not padded) and data region.
  std::string write_st(const std::string& header, const std::string& data = "") const {
    return write_file("in.safetensors", file_bytes(header, data));
  }

  static std::string read_bytes(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  // The message read_safetensors throws, or "(no error)".
  static std::string read_error(const std::string& p) {
    try {
      read_safetensors(p);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  }
  static std::string write_error(const std::string& p, const SafeTensors& file) {
    try {
      write_safetensors(p, file);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  }

  fs::path dir_;
};

SafeTensors sample() {
  SafeTensors file;
  std::vector<float> values(2 * 3);
  for (size_t i = 0; i < values.size(); ++i) values[i] = 0.25f * static_cast<float>(i) - 0.5f;
  file.tensors["0.weight"] = Tensor({2, 3}, values);
  file.tensors["0.bias"] = Tensor({4}, {-0.0f, std::numeric_limits<float>::infinity(),
                                        std::numeric_limits<float>::quiet_NaN(), 1e-40f});
  file.tensors["scalar"] = Tensor({}, {3.5f});
  file.tensors["empty"] = Tensor({0});
  file.tensors["empty3d"] = Tensor({2, 0, 3});
  std::vector<float> big(1 * 1 * 5 * 3);
  for (size_t i = 0; i < big.size(); ++i) big[i] = std::sin(static_cast<float>(i)) * 1e3f;
  file.tensors["bn.running_mean"] = Tensor({1, 1, 5, 3}, big);
  return file;
}

// ---- round trips ----------------------------------------------------------------------------

TEST_F(SafeTensorsTest, RoundTripKeepsShapesAndBits) {
  SafeTensors file = sample();
  std::string p = path("m.safetensors");
  write_safetensors(p, file);
  SafeTensors back = read_safetensors(p);
  ASSERT_EQ(back.tensors.size(), file.tensors.size());
  for (const auto& [name, t] : file.tensors) {
    ASSERT_TRUE(back.tensors.count(name)) << name;
    expect_same_tensor(back.tensors.at(name), t, name);
  }
  EXPECT_EQ(back.tensors.at("scalar").ndim(), 0);
  EXPECT_EQ(back.tensors.at("scalar").numel(), 1);
  EXPECT_TRUE(back.tensors.at("empty3d").empty());
  EXPECT_TRUE(back.metadata.empty());
  EXPECT_THAT(read_bytes(p), ::testing::Not(HasSubstr("__metadata__")));
}

TEST_F(SafeTensorsTest, RoundTripMetadata) {
  SafeTensors file;
  file.tensors["w"] = Tensor({2}, {1.0f, 2.0f});
  file.metadata = {{"epoch", "5"},
                   {"spec", R"({"layers": [{"kind": "Linear"}]})"},
                   {"note", "line one\nline \"two\" \xc3\xa9"},
                   {"blank", ""}};
  std::string p = path("m.safetensors");
  write_safetensors(p, file);
  SafeTensors back = read_safetensors(p);
  EXPECT_EQ(back.metadata, file.metadata);
  expect_same_tensor(back.tensors.at("w"), file.tensors.at("w"), "w");
}

TEST_F(SafeTensorsTest, RoundTripNoTensors) {
  std::string p = path("m.safetensors");
  write_safetensors(p, SafeTensors{});
  EXPECT_EQ(read_bytes(p), file_bytes("{}      ", ""));
  SafeTensors back = read_safetensors(p);
  EXPECT_TRUE(back.tensors.empty());
  EXPECT_TRUE(back.metadata.empty());
}

// Checks the written bytes against the format rules without using our reader.
TEST_F(SafeTensorsTest, WrittenFileFollowsFormatRules) {
  SafeTensors file = sample();
  file.metadata["epoch"] = "2";
  std::string p = path("m.safetensors");
  write_safetensors(p, file);
  std::string bytes = read_bytes(p);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t{static_cast<unsigned char>(bytes[i])} << (8 * i);
  ASSERT_LE(n, bytes.size() - 8);
  EXPECT_EQ(n % 8, 0u);
  std::string header = bytes.substr(8, n);
  std::string data = bytes.substr(8 + n);
  size_t last = header.find_last_not_of(' ');
  EXPECT_EQ(header[last], '}');
  EXPECT_LT(header.size() - last - 1, 8u);  // at most 7 spaces of padding

  nlohmann::ordered_json j = nlohmann::ordered_json::parse(header);
  std::vector<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, entry] : j.items()) {
    if (name == "__metadata__") {
      EXPECT_EQ(entry, nlohmann::ordered_json({{"epoch", "2"}}));
      continue;
    }
    names.push_back(name);
    const Tensor& t = file.tensors.at(name);
    EXPECT_EQ(entry.at("dtype"), "F32");
    EXPECT_EQ(entry.at("shape").get<Shape>(), t.shape());
    uint64_t begin = entry.at("data_offsets").at(0);
    uint64_t end = entry.at("data_offsets").at(1);
    EXPECT_EQ(begin, offset) << name;  // contiguous, in name order
    EXPECT_EQ(end - begin, static_cast<uint64_t>(t.numel()) * 4) << name;
    if (t.numel() > 0) {
      EXPECT_EQ(std::memcmp(data.data() + begin, t.data(), end - begin), 0) << name;
    }
    offset = end;
  }
  EXPECT_EQ(offset, data.size());  // the buffers cover the data region exactly
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(names.size(), file.tensors.size());
}

// The bytes tools/goldens_common.py's save_safetensors writes for two tensors and metadata.
std::string goldens_common_file() {
  std::string header = padded(R"({"0.bias":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                              R"("0.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]},)"
                              R"("__metadata__":{"epoch":"3","model":"{\"kind\": \"basic\"}"}})");
  return file_bytes(header, le_bytes<float>({0.5f, -1.5f, 1.0f, 2.0f, 3.0f, -4.0f}));
}

TEST_F(SafeTensorsTest, ReadsGoldensCommonLayout) {
  std::string p = write_file("golden.safetensors", goldens_common_file());
  SafeTensors back = read_safetensors(p);
  ASSERT_EQ(back.tensors.size(), 2u);
  expect_same_tensor(back.tensors.at("0.bias"), Tensor({2}, {0.5f, -1.5f}), "0.bias");
  expect_same_tensor(back.tensors.at("0.weight"), Tensor({2, 2}, {1.0f, 2.0f, 3.0f, -4.0f}),
                     "0.weight");
  std::map<std::string, std::string> want = {{"epoch", "3"}, {"model", R"({"kind": "basic"})"}};
  EXPECT_EQ(back.metadata, want);
}

TEST_F(SafeTensorsTest, WriterMatchesGoldensCommonBytes) {
  SafeTensors file;
  file.tensors["0.weight"] = Tensor({2, 2}, {1.0f, 2.0f, 3.0f, -4.0f});
  file.tensors["0.bias"] = Tensor({2}, {0.5f, -1.5f});
  file.metadata = {{"epoch", "3"}, {"model", R"({"kind": "basic"})"}};
  std::string p = path("m.safetensors");
  write_safetensors(p, file);
  EXPECT_EQ(read_bytes(p), goldens_common_file());
}

TEST_F(SafeTensorsTest, ReadsUnpaddedHeaderAnyKeyOrderAndGaps) {
  // A header length that is not a multiple of 8, fields in another order, 4 unused bytes
  // between the buffers, and empty tensors (which share no byte with any buffer) inside a
  // buffer and inside the gap.
  std::string header =
      R"({"b":{"data_offsets":[8,12],"shape":[],"dtype":"F32"},"a":{"dtype":"F32",)"
      R"("shape":[1],"data_offsets":[0,4]},"e":{"dtype":"F32","shape":[0],"data_offsets":[2,2]},)"
      R"("f":{"dtype":"U8","shape":[3,0],"data_offsets":[4,4]}})";
  ASSERT_NE(header.size() % 8, 0u);
  std::string p = write_st(header, le_bytes<float>({7.0f, 99.0f, -2.0f}));
  SafeTensors back = read_safetensors(p);
  expect_same_tensor(back.tensors.at("a"), Tensor({1}, {7.0f}), "a");
  expect_same_tensor(back.tensors.at("b"), Tensor({}, {-2.0f}), "b");
  expect_same_tensor(back.tensors.at("e"), Tensor({0}), "e");
  expect_same_tensor(back.tensors.at("f"), Tensor({3, 0}), "f");
}

// ---- dtype conversions ----------------------------------------------------------------------

std::string one_tensor(const std::string& dtype, const Shape& shape, size_t bytes) {
  nlohmann::ordered_json j;
  j["t"] = {{"dtype", dtype}, {"shape", shape}, {"data_offsets", {0, bytes}}};
  return padded(j.dump());
}

TEST_F(SafeTensorsTest, ReadsF32AsIs) {
  std::vector<float> v = {1.5f, -0.0f, 3.25e-3f, 1e30f};
  std::string p = write_st(one_tensor("F32", {2, 2}, 16), le_bytes(v));
  expect_same_tensor(read_safetensors(p).tensors.at("t"), Tensor({2, 2}, v), "t");
}

TEST_F(SafeTensorsTest, ConvertsF64) {
  std::vector<double> v = {1.5, -2.25, 0.1, 1e300};
  std::string p = write_st(one_tensor("F64", {4}, 32), le_bytes(v));
  Tensor want({4}, {1.5f, -2.25f, 0.1f, std::numeric_limits<float>::infinity()});
  expect_same_tensor(read_safetensors(p).tensors.at("t"), want, "t");
}

TEST_F(SafeTensorsTest, ConvertsI64) {
  std::vector<int64_t> v = {0, -3, 1875, int64_t{1} << 40, 16777217};
  std::string p = write_st(one_tensor("I64", {5}, 40), le_bytes(v));
  // 16777217 = 2^24 + 1 rounds to the nearest float, 2^24.
  Tensor want({5}, {0.0f, -3.0f, 1875.0f, 1099511627776.0f, 16777216.0f});
  expect_same_tensor(read_safetensors(p).tensors.at("t"), want, "t");
}

TEST_F(SafeTensorsTest, ConvertsI64Scalar) {  // PyTorch's num_batches_tracked
  std::string p = write_st(one_tensor("I64", {}, 8), le_bytes<int64_t>({938}));
  expect_same_tensor(read_safetensors(p).tensors.at("t"), Tensor({}, {938.0f}), "t");
}

TEST_F(SafeTensorsTest, ConvertsI32) {
  std::vector<int32_t> v = {-2147483647 - 1, -1, 0, 2147483647};
  std::string p = write_st(one_tensor("I32", {1, 4}, 16), le_bytes(v));
  Tensor want({1, 4}, {-2147483648.0f, -1.0f, 0.0f, 2147483648.0f});
  expect_same_tensor(read_safetensors(p).tensors.at("t"), want, "t");
}

TEST_F(SafeTensorsTest, ConvertsU8) {
  std::vector<uint8_t> v = {0, 1, 128, 255, 7};
  std::string p = write_st(one_tensor("U8", {5}, 5), le_bytes(v));
  Tensor want({5}, {0.0f, 1.0f, 128.0f, 255.0f, 7.0f});
  expect_same_tensor(read_safetensors(p).tensors.at("t"), want, "t");
}

TEST_F(SafeTensorsTest, ConvertsI8AndRemembersIt) {
  std::vector<int8_t> v = {0, -1, -128, 127, 7};
  std::string p = write_st(one_tensor("I8", {5}, 5), le_bytes(v));
  const SafeTensors file = read_safetensors(p);
  expect_same_tensor(file.tensors.at("t"), Tensor({5}, {0.0f, -1.0f, -128.0f, 127.0f, 7.0f}), "t");
  EXPECT_EQ(file.int8, std::set<std::string>{"t"});
}

// ---- malformed files: each names the file and the problem --------------------------------

TEST_F(SafeTensorsTest, MissingFile) {
  std::string p = path("nope.safetensors");
  EXPECT_EQ(read_error(p), p + ": cannot open: No such file or directory");
}

TEST_F(SafeTensorsTest, PathIsADirectory) {
  std::string p = path("adir");
  fs::create_directory(p);
  EXPECT_EQ(read_error(p), p + ": cannot read: Is a directory");
}

TEST_F(SafeTensorsTest, TooShortFile) {
  std::string p = write_file("short.safetensors", std::string("\x02\0\0\0\0", 5));
  EXPECT_EQ(read_error(p),
            p + ": file is too short for a safetensors header (5 bytes, need at least 8)");
}

TEST_F(SafeTensorsTest, HeaderLengthBeyondFile) {
  std::string bytes = file_bytes("{}", "");
  bytes[0] = 11;  // claims 11 header bytes, 2 follow
  std::string p = write_file("long.safetensors", bytes);
  EXPECT_EQ(read_error(p), p + ": header length 11 exceeds the 2 bytes that follow it");
}

TEST_F(SafeTensorsTest, HeaderLengthOverLimit) {
  std::string bytes = file_bytes("{}", "");
  bytes.replace(0, 8, le_bytes<uint64_t>({100'000'001}));
  std::string p = write_file("huge.safetensors", bytes);
  EXPECT_EQ(read_error(p), p + ": header length 100000001 exceeds the 100000000-byte limit");
  bytes.replace(0, 8, le_bytes<uint64_t>({~uint64_t{0}}));
  p = write_file("huge2.safetensors", bytes);
  EXPECT_EQ(read_error(p),
            p + ": header length 18446744073709551615 exceeds the 100000000-byte limit");
}

TEST_F(SafeTensorsTest, InvalidJson) {
  std::string p = write_st(R"({"t": {"dtype": "F32",)");
  std::string err = read_error(p);
  EXPECT_THAT(err, StartsWith(p + ": header is not valid JSON: parse error at line 1"));
  EXPECT_THAT(err, ::testing::Not(HasSubstr("json.exception")));
  EXPECT_EQ(err.find('\n'), std::string::npos);
}

TEST_F(SafeTensorsTest, EmptyHeader) {
  std::string p = write_st("");
  EXPECT_THAT(read_error(p), StartsWith(p + ": header is not valid JSON: "));
}

TEST_F(SafeTensorsTest, HeaderNotAnObject) {
  std::string p = write_st("[1, 2]  ");
  EXPECT_EQ(read_error(p), p + ": header must be a JSON object, got [1,2]");
}

TEST_F(SafeTensorsTest, EntryNotAnObject) {
  std::string p = write_st(R"({"t": [0, 4]})", "abcd");
  EXPECT_EQ(read_error(p), p + ": tensor \"t\": entry must be an object, got [0,4]");
}

TEST_F(SafeTensorsTest, MissingDtype) {
  std::string p = write_st(R"({"t": {"shape": [1], "data_offsets": [0, 4]}})", "abcd");
  EXPECT_EQ(read_error(p), p + ": tensor \"t\": missing \"dtype\"");
}

TEST_F(SafeTensorsTest, DtypeNotAString) {
  std::string p = write_st(R"({"t": {"dtype": 32, "shape": [1], "data_offsets": [0, 4]}})", "abcd");
  EXPECT_EQ(read_error(p), p + ": tensor \"t\": \"dtype\" must be a string, got 32");
}

TEST_F(SafeTensorsTest, MissingShape) {
  std::string p = write_st(R"({"t": {"dtype": "F32", "data_offsets": [0, 4]}})", "abcd");
  EXPECT_EQ(read_error(p), p + ": tensor \"t\": missing \"shape\"");
}

TEST_F(SafeTensorsTest, ShapeNotAnArray) {
  std::string p =
      write_st(R"({"t": {"dtype": "F32", "shape": "1", "data_offsets": [0, 4]}})", "abcd");
  EXPECT_EQ(read_error(p),
            p + ": tensor \"t\": \"shape\" must be an array of non-negative integers, got \"1\"");
}

TEST_F(SafeTensorsTest, ShapeNotIntegers) {
  std::string p =
      write_st(R"({"t": {"dtype": "F32", "shape": [1, 2.5], "data_offsets": [0, 4]}})", "abcd");
  EXPECT_EQ(read_error(p),
            p + ": tensor \"t\": \"shape\" must be an array of non-negative integers, got [1,2.5]");
  p = write_st(R"({"t": {"dtype": "F32", "shape": [null], "data_offsets": [0, 4]}})", "abcd");
  EXPECT_EQ(read_error(p),
            p + ": tensor \"t\": \"shape\" must be an array of non-negative integers, got [null]");
}

TEST_F(SafeTensorsTest, ShapeDimensionTooLargeForInt64) {
  std::string p = write_st(
      R"({"t": {"dtype": "F32", "shape": [9223372036854775808], "data_offsets": [0, 4]}})", "abcd");
  EXPECT_EQ(read_error(p), p + ": tensor \"t\": \"shape\" must be an array of non-negative "
                               "integers, got [9223372036854775808]");
}

TEST_F(SafeTensorsTest, NegativeDimension) {
  std::string p =
      write_st(R"({"t": {"dtype": "F32", "shape": [-1, 1], "data_offsets": [0, 4]}})", "abcd");
  EXPECT_EQ(read_error(p), p + ": tensor \"t\": \"shape\" [-1,1] has a negative dimension");
}

TEST_F(SafeTensorsTest, MissingDataOffsets) {
  std::string p = write_st(R"({"t": {"dtype": "F32", "shape": [1]}})", "abcd");
  EXPECT_EQ(read_error(p), p + ": tensor \"t\": missing \"data_offsets\"");
}

TEST_F(SafeTensorsTest, DataOffsetsWrongLength) {
  std::string p = write_st(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [4]}})", "abcd");
  EXPECT_EQ(read_error(p), p + ": tensor \"t\": \"data_offsets\" must be [begin, end] with "
                               "non-negative integers, got [4]");
}

TEST_F(SafeTensorsTest, DataOffsetsNotIntegers) {
  std::string p =
      write_st(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, "4"]}})", "abcd");
  EXPECT_EQ(read_error(p), p + ": tensor \"t\": \"data_offsets\" must be [begin, end] with "
                               "non-negative integers, got [0,\"4\"]");
}

TEST_F(SafeTensorsTest, NegativeDataOffsets) {
  std::string p =
      write_st(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})", "abcd");
  EXPECT_EQ(read_error(p), p + ": tensor \"t\": \"data_offsets\" must be [begin, end] with "
                               "non-negative integers, got [-4,0]");
}

TEST_F(SafeTensorsTest, DataOffsetsPastTheData) {
  std::string p =
      write_st(R"({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", "abcd");
  EXPECT_EQ(read_error(p), p + ": tensor \"t\": data_offsets [0, 8] are out of range for the "
                               "4-byte data region (need begin <= end <= 4)");
}

TEST_F(SafeTensorsTest, DataOffsetsBeginAfterEnd) {
  std::string p =
      write_st(R"({"t": {"dtype": "F32", "shape": [0], "data_offsets": [4, 0]}})", "abcd");
  EXPECT_EQ(read_error(p), p + ": tensor \"t\": data_offsets [4, 0] are out of range for the "
                               "4-byte data region (need begin <= end <= 4)");
}

TEST_F(SafeTensorsTest, OverlappingBuffers) {
  std::string p = write_st(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                           R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                           std::string(12, '\0'));
  EXPECT_EQ(read_error(p), p + ": tensors \"a\" [0, 8] and \"b\" [4, 12] overlap");
}

TEST_F(SafeTensorsTest, BufferInsideAnother) {
  std::string p = write_st(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},)"
                           R"( "b": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})",
                           std::string(16, '\0'));
  EXPECT_EQ(read_error(p), p + ": tensors \"b\" [0, 16] and \"a\" [4, 8] overlap");
}

TEST_F(SafeTensorsTest, SizeDoesNotMatchShape) {
  std::string p =
      write_st(R"({"0.weight": {"dtype": "F32", "shape": [3, 3], "data_offsets": [0, 10]}})",
               std::string(36, '\0'));
  EXPECT_EQ(read_error(p), p + ": tensor \"0.weight\": data_offsets [0, 10] do not match shape "
                               "(3, 3) of F32 (36 bytes)");
}

TEST_F(SafeTensorsTest, HugeShapeRejectedBeforeAllocation) {
  // 2^40 floats would be 4 TiB: allocating first would fail with an out-of-memory error.
  std::string p =
      write_st(R"({"t": {"dtype": "F32", "shape": [1099511627776], "data_offsets": [0, 16]}})",
               std::string(16, '\0'));
  EXPECT_EQ(read_error(p), p + ": tensor \"t\": data_offsets [0, 16] do not match shape "
                               "(1099511627776) of F32 (4398046511104 bytes)");
}

TEST_F(SafeTensorsTest, ShapeWhoseSizeOverflowsRejected) {
  // 2^61 * 2 floats = 2^64 bytes, which wraps to 0 in 64-bit arithmetic and would match [0, 0].
  std::string p = write_st(
      R"({"t": {"dtype": "F32", "shape": [2305843009213693952, 2], "data_offsets": [0, 0]}})");
  EXPECT_EQ(read_error(p), p + ": tensor \"t\": shape (2305843009213693952, 2) of F32 is too "
                               "large (2^63 bytes or more)");
  // A zero dimension does not excuse dimensions whose product overflows.
  p = write_st(R"({"t": {"dtype": "U8", "shape": [4294967296, 4294967296, 0],)"
               R"( "data_offsets": [0, 0]}})");
  EXPECT_EQ(read_error(p), p + ": tensor \"t\": shape (4294967296, 4294967296, 0) of U8 is too "
                               "large (2^63 bytes or more)");
  // 2^63 bytes fits in uint64 but not in int64, where the element count is kept.
  p = write_st(R"({"t": {"dtype": "U8", "shape": [4611686018427387904, 2, 0],)"
               R"( "data_offsets": [0, 0]}})");
  EXPECT_EQ(read_error(p), p + ": tensor \"t\": shape (4611686018427387904, 2, 0) of U8 is too "
                               "large (2^63 bytes or more)");
}

TEST_F(SafeTensorsTest, UnsupportedDtype) {
  for (std::string dtype : {"BF16", "F16", "BOOL", "I16", "f32"}) {
    std::string p = write_st(
        R"({"t": {"dtype": ")" + dtype + R"(", "shape": [2], "data_offsets": [0, 4]}})", "abcd");
    EXPECT_EQ(read_error(p), p + ": tensor \"t\": dtype \"" + dtype +
                                 "\" is not supported (expected F32, F64, I64, I32, I8 or U8)");
  }
}

TEST_F(SafeTensorsTest, MetadataNotStrings) {
  std::string p = write_st(R"({"__metadata__": {"name": "m", "epoch": 3}})");
  EXPECT_EQ(read_error(p),
            p + ": \"__metadata__\" must be an object of strings, but \"epoch\" is 3");
}

TEST_F(SafeTensorsTest, MetadataNotAnObject) {
  std::string p = write_st(R"({"__metadata__": ["epoch", "3"]})");
  EXPECT_EQ(read_error(p),
            p + ": \"__metadata__\" must be an object of strings, got [\"epoch\",\"3\"]");
}

TEST_F(SafeTensorsTest, ErrorMessagesStayOnOneLine) {
  std::string p =
      write_st(R"({"bad\nname": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}})", "abcd");
  EXPECT_EQ(read_error(p), p + ": tensor \"bad\\nname\": dtype \"F16\" is not supported "
                               "(expected F32, F64, I64, I32, I8 or U8)");
}

// ---- writing --------------------------------------------------------------------------------

TEST_F(SafeTensorsTest, WriteIntoMissingDirectoryFails) {
  std::string p = path("no_such_dir/m.safetensors");
  EXPECT_EQ(write_error(p, sample()), p + ": cannot write: No such file or directory");
  EXPECT_FALSE(fs::exists(path("no_such_dir")));
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(SafeTensorsTest, FailedRenameRemovesTmpAndKeepsTarget) {
  // The target is a non-empty directory: the .tmp is written, then the rename fails.
  std::string p = path("m.safetensors");
  fs::create_directory(p);
  write_file("m.safetensors/keep", "x");
  EXPECT_EQ(write_error(p, sample()), p + ": cannot write: Is a directory");
  EXPECT_FALSE(fs::exists(p + ".tmp"));
  EXPECT_EQ(read_bytes(p + "/keep"), "x");
}

TEST_F(SafeTensorsTest, SuccessfulWriteLeavesNoTmpAndReplacesOldFile) {
  std::string p = path("m.safetensors");
  write_safetensors(p, sample());
  EXPECT_TRUE(fs::exists(p));
  EXPECT_FALSE(fs::exists(p + ".tmp"));

  SafeTensors second;
  second.tensors["only"] = Tensor({1}, {42.0f});
  write_safetensors(p, second);
  EXPECT_FALSE(fs::exists(p + ".tmp"));
  SafeTensors back = read_safetensors(p);
  ASSERT_EQ(back.tensors.size(), 1u);
  expect_same_tensor(back.tensors.at("only"), second.tensors.at("only"), "only");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(SafeTensorsTest, WriteRejectsReservedName) {
  SafeTensors file;
  file.tensors["__metadata__"] = Tensor({1});
  std::string p = path("m.safetensors");
  EXPECT_EQ(write_error(p, file), p + ": tensor name \"__metadata__\" is reserved for metadata");
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(SafeTensorsTest, WriteRejectsInvalidUtf8) {
  SafeTensors file;
  file.tensors["w"] = Tensor({1});
  file.metadata["note"] = "\xff\xfe";
  std::string p = path("m.safetensors");
  EXPECT_EQ(write_error(p, file), p + ": tensor names and metadata must be valid UTF-8");
  EXPECT_TRUE(fs::is_empty(dir_));
}

}  // namespace
}  // namespace scratchnet

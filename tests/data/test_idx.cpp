#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>

#include "scratchnet/data/idx.h"
#include "support/error.h"
#include "support/temp_dir.h"

namespace scratchnet {
namespace {

using testing::error_of;
using ::testing::HasSubstr;
using testing::TempDir;

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
}

void write_gz(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  gzclose(f);
}

// Header for unsigned-byte data of the given dims.
std::vector<uint8_t> header(std::vector<uint32_t> dims) {
  std::vector<uint8_t> h = {0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) h.push_back(static_cast<uint8_t>(d >> s));
  return h;
}

TEST(Idx, ReadsRawImages) {
  TempDir dir;
  auto bytes = header({2, 2, 3});
  for (int i = 0; i < 12; ++i) bytes.push_back(static_cast<uint8_t>(i * 20));
  write_bytes(dir / "img", bytes);
  IdxArray a = read_idx(dir / "img");
  EXPECT_EQ(a.dims, (std::vector<int64_t>{2, 2, 3}));
  ASSERT_EQ(a.data.size(), 12u);
  EXPECT_EQ(a.data[11], 220);
}

TEST(Idx, ReadsGzipByContent) {
  TempDir dir;
  auto bytes = header({5});
  for (uint8_t v : {3, 1, 4, 1, 5}) bytes.push_back(v);
  write_gz(dir / "labels.gz", bytes);
  write_gz(dir / "labels-no-suffix", bytes);
  for (const char* name : {"labels.gz", "labels-no-suffix"}) {
    IdxArray a = read_idx(dir / name);
    EXPECT_EQ(a.dims, (std::vector<int64_t>{5}));
    EXPECT_EQ(a.data, (std::vector<uint8_t>{3, 1, 4, 1, 5}));
  }
}

TEST(Idx, WriteThenReadRoundTrips) {
  TempDir dir;
  IdxArray a{{3, 2}, {1, 2, 3, 4, 5, 6}};
  write_idx(dir / "x", a);
  IdxArray b = read_idx(dir / "x");
  EXPECT_EQ(b.dims, a.dims);
  EXPECT_EQ(b.data, a.data);
  EXPECT_FALSE(std::filesystem::exists(dir / "x.tmp"));
}

TEST(Idx, MissingFile) {
  TempDir dir;
  EXPECT_THAT(error_of([&] { read_idx(dir / "nope"); }),
              HasSubstr("nope: cannot open: No such file or directory"));
}

TEST(Idx, WrongMagicNumber) {
  TempDir dir;
  write_bytes(dir / "bad", {0x89, 'P', 'N', 'G', 0, 0, 0, 0});
  EXPECT_THAT(error_of([&] { read_idx(dir / "bad"); }),
              HasSubstr("bad: not an IDX file: magic number 89504e47 does not start with 0000"));
}

TEST(Idx, UnsupportedType) {
  TempDir dir;
  write_bytes(dir / "f32", {0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0});
  EXPECT_THAT(error_of([&] { read_idx(dir / "f32"); }),
              HasSubstr("f32: IDX data type 0x0d is not supported (expected 0x08, unsigned byte)"));
}

TEST(Idx, TooShortForAHeader) {
  TempDir dir;
  write_bytes(dir / "short", {0, 0});
  EXPECT_THAT(error_of([&] { read_idx(dir / "short"); }),
              HasSubstr("short: not an IDX file: only 2 bytes, a header needs at least 4"));
}

TEST(Idx, TruncatedHeader) {
  TempDir dir;
  write_bytes(dir / "t", {0, 0, 8, 3, 0, 0, 0, 1});
  EXPECT_THAT(error_of([&] { read_idx(dir / "t"); }),
              HasSubstr("t: truncated IDX header: 3 dimensions need 12 bytes, got 4"));
}

TEST(Idx, TruncatedData) {
  TempDir dir;
  auto bytes = header({4, 2, 2});
  bytes.resize(bytes.size() + 10);
  write_bytes(dir / "trunc", bytes);
  EXPECT_THAT(error_of([&] { read_idx(dir / "trunc"); }),
              HasSubstr("trunc: truncated: the header promises 16 data bytes, the file has 10"));
}

TEST(Idx, TrailingData) {
  TempDir dir;
  auto bytes = header({2});
  bytes.resize(bytes.size() + 3);
  write_bytes(dir / "long", bytes);
  EXPECT_THAT(error_of([&] { read_idx(dir / "long"); }),
              HasSubstr("long: file is longer than its header says (2 data bytes)"));
}

TEST(Idx, HugeClaimIsRejectedWithoutAllocating) {
  TempDir dir;
  // 2^31 images of 28x28: 1.7 TB claimed, 100 bytes present.
  auto bytes = header({1u << 31, 28, 28});
  bytes.resize(bytes.size() + 100);
  write_bytes(dir / "huge", bytes);
  EXPECT_THAT(error_of([&] { read_idx(dir / "huge"); }),
              HasSubstr("huge: IDX header claims more than 4294967296 bytes of data"));
  // Just under the limit: fails on the real size, reading only what is there.
  auto bytes2 = header({1u << 20, 64, 64});
  bytes2.resize(bytes2.size() + 100);
  write_gz(dir / "big.gz", bytes2);
  EXPECT_THAT(
      error_of([&] { read_idx(dir / "big.gz"); }),
      HasSubstr("big.gz: truncated: the header promises 4294967296 data bytes, the file has 100"));
}

TEST(Idx, TooManyDimensions) {
  TempDir dir;
  write_bytes(dir / "d", {0, 0, 8, 9});
  EXPECT_THAT(error_of([&] { read_idx(dir / "d"); }),
              HasSubstr("d: IDX file has 9 dimensions, expected 1 to 4"));
}

}  // namespace
}  // namespace scratchnet

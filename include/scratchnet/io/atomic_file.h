// atomic_file.h — files written whole or not at all.
//
// The content goes to "<path>.tmp", which is flushed, synced to disk, closed and renamed over
// <path>: a crash or a full disk never leaves a half-written file under the real name, and an old
// file at <path> stays intact until the new one is complete.
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <string_view>

namespace scratchnet {

// Calls write(f) on the temporary file, then renames it. Write errors (checked with ferror)
// and rename errors throw scratchnet::Error naming `path` and the reason; the temporary is
// removed. An exception from `write` also removes it and propagates.
void write_file_atomic(const std::string& path, const std::function<void(std::FILE*)>& write);

void write_text_atomic(const std::string& path, std::string_view text);

}  // namespace scratchnet

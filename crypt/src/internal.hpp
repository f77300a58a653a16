// Helpers shared by the crypt sources; not part of the public API.
#pragma once

#include <cstddef>
#include <string>

#include "lithos/common/result.hpp"
#include "lithos/crypt/secure_buffer.hpp"

namespace lithos::crypt::detail {

// Key files are small; anything larger is refused rather than read.
inline constexpr std::size_t kMaxKeyFileSize = 1 << 20;

enum class ReadError { io, too_large };

struct ReadFailure {
  ReadError kind;
  int error_number;  // errno for ReadError::io
};

// Reads all of `fd` (at most `limit` bytes) into a wiped-on-destruction buffer.
Result<SecureBuffer, ReadFailure> read_all(int fd, std::size_t limit);

}  // namespace lithos::crypt::detail

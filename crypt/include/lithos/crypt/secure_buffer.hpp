// A heap byte buffer for key material and decrypted secrets: its bytes are
// wiped (sodium_memzero) when it is destroyed, cleared or moved from.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

namespace lithos::crypt {

class SecureBuffer {
 public:
  SecureBuffer() noexcept = default;
  // `size` zero bytes.
  explicit SecureBuffer(std::size_t size);
  // A copy of `bytes` (the caller stays responsible for wiping its own copy).
  explicit SecureBuffer(std::string_view bytes);
  SecureBuffer(const SecureBuffer&) = delete;
  SecureBuffer& operator=(const SecureBuffer&) = delete;
  SecureBuffer(SecureBuffer&& other) noexcept;
  SecureBuffer& operator=(SecureBuffer&& other) noexcept;
  ~SecureBuffer();

  unsigned char* data() noexcept { return bytes_.get(); }
  const unsigned char* data() const noexcept { return bytes_.get(); }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::string_view view() const noexcept {
    return {reinterpret_cast<const char*>(bytes_.get()), size_};
  }

  // An explicit deep copy (copying is never implicit).
  SecureBuffer clone() const;
  // Shrink the visible size (bytes past the new size are wiped).
  void truncate(std::size_t size) noexcept;
  // Wipe and release.
  void clear() noexcept;

 private:
  std::unique_ptr<unsigned char[]> bytes_;
  std::size_t size_ = 0;
};

}  // namespace lithos::crypt

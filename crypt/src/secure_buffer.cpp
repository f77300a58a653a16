#include "lithos/crypt/secure_buffer.hpp"

#include <sodium.h>

#include <cstring>
#include <utility>

namespace lithos::crypt {

SecureBuffer::SecureBuffer(std::size_t size)
    : bytes_(size ? std::make_unique<unsigned char[]>(size) : nullptr), size_(size) {}

SecureBuffer::SecureBuffer(std::string_view bytes) : SecureBuffer(bytes.size()) {
  if (!bytes.empty()) std::memcpy(bytes_.get(), bytes.data(), bytes.size());
}

SecureBuffer::SecureBuffer(SecureBuffer&& other) noexcept
    : bytes_(std::move(other.bytes_)), size_(std::exchange(other.size_, 0)) {}

SecureBuffer& SecureBuffer::operator=(SecureBuffer&& other) noexcept {
  if (this != &other) {
    clear();
    bytes_ = std::move(other.bytes_);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SecureBuffer::~SecureBuffer() {
  clear();
}

SecureBuffer SecureBuffer::clone() const {
  return SecureBuffer(view());
}

void SecureBuffer::truncate(std::size_t size) noexcept {
  if (size >= size_) return;
  sodium_memzero(bytes_.get() + size, size_ - size);
  size_ = size;
}

void SecureBuffer::clear() noexcept {
  if (bytes_ && size_) sodium_memzero(bytes_.get(), size_);
  bytes_.reset();
  size_ = 0;
}

}  // namespace lithos::crypt

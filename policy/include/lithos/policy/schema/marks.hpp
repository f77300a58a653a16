// Layer 1 of schema.hpp: MarkTable, where each decoded value came from (line
// and column by readable path), and the short-text hash it and the field
// lookup of struct.hpp share.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lithos/policy/diagnostics.hpp"

namespace lithos::policy {
namespace schema {

// Hash of a short text (paths, keys): eight bytes at a time, multiply and
// fold (inlined; std::hash of a string_view is an out-of-line call).
inline std::size_t short_text_hash(std::string_view s) {
  std::uint64_t h = 0x9E3779B97F4A7C15ULL ^ s.size();
  const char* p = s.data();
  std::size_t n = s.size();
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
    h ^= h >> 32;
  }
  std::uint64_t w = 0;
  if (n != 0) std::memcpy(&w, p, n);  // an empty view may have no data pointer
  h = (h ^ w) * 0xC4CEB9FE1A85EC53ULL;
  return static_cast<std::size_t>(h ^ (h >> 29));
}

// Where each decoded value came from, keyed by a readable path such as
// `.children[web].image` or `.volumes[/data].path`, so that cross-file checks
// can point at the exact line and column.
//
// Decoding records one path per node, so recording must be cheap: the paths
// are appended to one buffer and indexed by an open-addressing hash table of
// entry numbers (no allocation per path). The first mark recorded for a path
// is kept.
//
// Most documents decode cleanly and are never asked for a mark (marks serve
// diagnostics), so a document may instead carry a way to fill its table —
// decoding its kept YAML tree again, recording — run on the first lookup.
// Not for concurrent lookups from several threads on one table.
class MarkTable {
 public:
  void fill_on_demand(std::function<void(MarkTable&)> fill) { fill_ = std::move(fill); }
  // Tables filled on demand so far in this process (benchmark and tests
  // check that a clean run fills none).
  static std::size_t demand_fills() { return demand_fills_.load(std::memory_order_relaxed); }

  void set(std::string_view path, Mark mark) {
    if (slots_.empty()) {
      // Sized for a typical config file, so that small files never regrow.
      entries_.reserve(64);
      text_.reserve(1024);
    }
    if (slots_.empty() || (entries_.size() + 1) * 2 > slots_.size()) grow();
    const std::size_t h = hash(path);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      const std::uint32_t slot = slots_[i];
      if (slot == kEmpty) {
        slots_[i] = static_cast<std::uint32_t>(entries_.size());
        entries_.push_back({static_cast<std::uint32_t>(text_.size()),
                            static_cast<std::uint32_t>(path.size()), h, mark});
        text_.append(path);
        return;
      }
      if (entries_[slot].hash == h && text_of(entries_[slot]) == path) return;
    }
  }
  // The mark of `path`, or of its nearest recorded ancestor.
  Mark find(std::string_view path) const {
    fill_now();
    while (true) {
      if (const Entry* e = lookup(path)) return e->mark;
      if (path.empty()) return {1, 1};
      auto cut = path.find_last_of(".[");
      path = cut == std::string_view::npos ? std::string_view{} : path.substr(0, cut);
    }
  }
  bool has(std::string_view path) const {
    fill_now();
    return lookup(path) != nullptr;
  }

 private:
  void fill_now() const {
    if (!fill_) return;
    auto fill = std::move(fill_);
    fill_ = nullptr;
    // Lookups on a const table may fill it; the members are mutable, so
    // this is defined even for a table declared const.
    fill(const_cast<MarkTable&>(*this));
    demand_fills_.fetch_add(1, std::memory_order_relaxed);
  }

  struct Entry {
    std::uint32_t offset;
    std::uint32_t size;
    std::size_t hash;
    Mark mark;
  };
  static constexpr std::uint32_t kEmpty = 0xFFFFFFFFu;

  static std::size_t hash(std::string_view s) { return short_text_hash(s); }
  std::string_view text_of(const Entry& e) const {
    return std::string_view(text_).substr(e.offset, e.size);
  }
  const Entry* lookup(std::string_view path) const {
    if (slots_.empty()) return nullptr;
    const std::size_t h = hash(path);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      const std::uint32_t slot = slots_[i];
      if (slot == kEmpty) return nullptr;
      if (entries_[slot].hash == h && text_of(entries_[slot]) == path) return &entries_[slot];
    }
  }
  void grow() {
    std::vector<std::uint32_t> slots(slots_.empty() ? 128 : slots_.size() * 2, kEmpty);
    const std::size_t mask = slots.size() - 1;
    for (std::uint32_t n = 0; n < entries_.size(); ++n) {
      std::size_t i = entries_[n].hash & mask;
      while (slots[i] != kEmpty) i = (i + 1) & mask;
      slots[i] = n;
    }
    slots_ = std::move(slots);
  }

  mutable std::string text_;                  // every recorded path, back to back
  mutable std::vector<Entry> entries_;        // in recording order
  mutable std::vector<std::uint32_t> slots_;  // entry numbers; size a power of two
  mutable std::function<void(MarkTable&)> fill_;
  inline static std::atomic<std::size_t> demand_fills_{0};
};

}  // namespace schema
}  // namespace lithos::policy

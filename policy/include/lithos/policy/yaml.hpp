// libyaml events -> a Node tree where every node knows its file:line:col.
// Aliases are expanded under a hard budget, nesting depth is bounded,
// duplicate keys and unsupported tags are diagnostics, never crashes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "lithos/policy/diagnostics.hpp"

namespace lithos::policy::yaml {

// A node is a small, trivially copyable view: its strings and children live
// in an Arena (a parsed Tree owns its own). Copying a node shares its
// subtree, which is how aliases are expanded without copying.
struct Node {
  enum class Kind : std::uint8_t { Scalar, Sequence, Mapping };
  struct Entry;  // a key and its value; complete after Node

  Kind kind = Kind::Scalar;
  bool plain = false;  // scalar written without quotes
  Mark mark;
  std::string_view tag;          // "" or a local tag such as "!Readonly"
  std::string_view value;        // scalars only
  std::span<const Node> items;   // sequences
  std::span<const Entry> pairs;  // mappings, keys are scalars

  bool is_scalar() const { return kind == Kind::Scalar; }
  bool is_sequence() const { return kind == Kind::Sequence; }
  bool is_mapping() const { return kind == Kind::Mapping; }
  // `key:` with nothing after it (or an empty file).
  bool is_implicit_null() const {
    return kind == Kind::Scalar && plain && tag.empty() && value.empty();
  }
  // `key: ~` or `key: null`, unquoted. `Null`, `NULL` are ordinary strings.
  bool is_explicit_null() const {
    return kind == Kind::Scalar && plain && tag.empty() && (value == "~" || value == "null");
  }
  bool is_null() const { return is_implicit_null() || is_explicit_null(); }
  // A tagged node whose value is empty (`!Persistent` alone).
  bool is_empty_scalar() const { return kind == Kind::Scalar && plain && value.empty(); }
};

struct Node::Entry {
  Node first;
  Node second;
};

// Storage for nodes: bump allocation in malloc'd blocks, freed all at once.
// One allocation per block instead of one per string and per child list;
// the fast path is inline (no virtual call, no aligned allocation).
class Arena {
 public:
  explicit Arena(std::size_t first_block = 1024) : next_block_(first_block) {}
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  ~Arena() {
    while (blocks_) {
      Block* previous = blocks_->previous;
      std::free(blocks_);
      blocks_ = previous;
    }
  }

  std::string_view text(std::string_view s) {
    if (s.empty()) return "";  // never a null data pointer
    auto* out = static_cast<char*>(allocate(s.size(), 1));
    std::memcpy(out, s.data(), s.size());
    return {out, s.size()};
  }
  // Nodes are trivially copyable, so a list of them is copied bytewise.
  template <class T>
  std::span<const T> copy(std::span<const T> from) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (from.empty()) return {};
    auto* out = static_cast<T*>(allocate(from.size_bytes(), alignof(T)));
    std::memcpy(static_cast<void*>(out), from.data(), from.size_bytes());
    return {out, from.size()};
  }

 private:
  struct Block {
    Block* previous;
  };
  void* allocate(std::size_t size, std::size_t align) {
    std::size_t at = (used_ + align - 1) & ~(align - 1);
    if (at + size > capacity_) [[unlikely]]
      return grow(size, align);
    used_ = at + size;
    return base_ + at;
  }
  void* grow(std::size_t size, std::size_t align) {
    const std::size_t header =
        (sizeof(Block) + alignof(std::max_align_t) - 1) & ~(alignof(std::max_align_t) - 1);
    std::size_t payload = std::max(next_block_, size + align);
    void* memory = std::malloc(header + payload);
    if (!memory) throw std::bad_alloc();
    blocks_ = new (memory) Block{blocks_};
    base_ = static_cast<char*>(memory) + header;
    capacity_ = payload;
    used_ = 0;
    next_block_ = payload * 2;
    return allocate(size, align);
  }

  Block* blocks_ = nullptr;
  char* base_ = nullptr;
  std::size_t used_ = 0;
  std::size_t capacity_ = 0;
  std::size_t next_block_;
};

// A parsed document: its root node and the arena every node points into.
// Moving a tree keeps its nodes valid (the arena does not move).
class Tree {
 public:
  explicit Tree(std::size_t first_block = 1024) : arena_(std::make_unique<Arena>(first_block)) {}
  const Node& root() const { return root_; }
  void set_root(const Node& root) { root_ = root; }
  Arena& arena() { return *arena_; }

 private:
  std::unique_ptr<Arena> arena_;
  Node root_;
};

// Budgets of one document (docs/lithos_check.md "Limits"). Aliases share the
// anchored subtree, but whatever decodes the tree copies it, so both budgets
// count the document as if every alias were written out.
struct Limits {
  std::size_t max_file_bytes = 1u << 20;  // checked by fstat before reading
  std::size_t max_nodes = 1'000'000;      // after alias expansion
  // Scalar bytes (keys and values) after alias expansion: a 1 MiB scalar
  // aliased 100 times is 100 MiB of strings once decoded.
  std::size_t max_expanded_bytes = 64u << 20;
  int max_depth = 64;
};

// Parses one document. On any error the diagnostics say why and nullopt is
// returned; an empty file yields an implicit-null scalar.
std::optional<Tree> parse(std::string_view text, const std::string& file, Diagnostics& diags,
                          const Limits& limits = {});

// Reads and parses a file; the text is registered in `sources` for reports.
std::optional<Tree> load_file(const std::string& path, Diagnostics& diags, Sources* sources,
                              const Limits& limits = {});

// Reads a file into memory with the size limit; nullopt (and a diagnostic)
// when unreadable. See read_opened: the file is opened for reading only once
// it is known to be a regular file within the limit.
std::optional<std::string> read_text(const std::string& path, Diagnostics& diags,
                                     const Limits& limits = {});

// Reads the file behind `path_fd`, an O_PATH descriptor (closed here), with
// `display` naming it in diagnostics. fstat first: anything but a regular
// file (device node, FIFO, socket, directory, symlink) and a file larger
// than limits.max_file_bytes are refused without ever being opened for
// reading, so no device driver's open runs and no FIFO blocks. Only then is
// the same inode reopened for reading through /proc/self/fd.
std::optional<std::string> read_opened(int path_fd, const std::string& display, Diagnostics& diags,
                                       const Limits& limits = {});

// Called with the display name of every file read_opened is about to read.
// The confined config reader records it where its parent can see it, so a
// reader that crashes or is killed is reported with the file it was reading
// (runtime/confine.hpp). Process-wide; nullptr (the default): no observer.
using ReadObserver = void (*)(std::string_view display) noexcept;
void set_read_observer(ReadObserver observer) noexcept;

// Block-style YAML text of a node tree. Strings that would read back as null
// (`~`, `null`, empty) or that need it are quoted; nodes with `plain` set are
// written as-is (used for `~`).
std::string emit(const Node& node);

}  // namespace lithos::policy::yaml

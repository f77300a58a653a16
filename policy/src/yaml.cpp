// The YAML reader: libyaml events into a node tree with file:line:col marks,
// under size, depth and alias limits, and the one safe read of a config file
// (docs/configs.md, "Reading YAML"). One file over 600 lines on purpose: the
// builder and the limits it enforces are one state machine.
#include "lithos/policy/yaml.hpp"

#include <yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <unordered_set>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lithos/common/fd.hpp"

namespace lithos::policy::yaml {
namespace {

Mark to_mark(const yaml_mark_t& m) {
  return {static_cast<int>(m.line) + 1, static_cast<int>(m.column) + 1};
}

// Line and column of a byte offset, for reader errors that only have offsets.
Mark mark_of_offset(std::string_view text, std::size_t offset) {
  Mark m{1, 1};
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++m.line;
      m.column = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      ++m.column;
    }
  }
  return m;
}

// Nodes and scalar bytes of a finished tree as if every alias were copied.
// Bounded: every node was charged to the budget when it was built.
struct Size {
  std::size_t nodes = 0;
  std::size_t bytes = 0;
};
void add_size(const Node& n, Size& total) {
  ++total.nodes;
  total.bytes += n.value.size();
  for (const auto& item : n.items) add_size(item, total);
  for (const auto& entry : n.pairs) {
    add_size(entry.first, total);
    add_size(entry.second, total);
  }
}

// The keys of a mapping under construction, for duplicate detection. Small
// mappings are scanned linearly (no allocation); from kLinear keys on, an
// index keyed by the pairs' own strings takes over.
class KeySet {
 public:
  explicit KeySet(const std::vector<Node::Entry>& pairs) : pairs_(pairs) {}

  // Records the key of the last pair; if an earlier pair has the same key,
  // returns that pair's index instead (the caller removes the last pair).
  std::optional<std::size_t> add_last() {
    const std::size_t last = pairs_.size() - 1;
    if (pairs_.size() <= kLinear) {
      for (std::size_t i = 0; i < last; ++i)
        if (pairs_[i].first.value == pairs_[last].first.value) return i;
      return std::nullopt;
    }
    if (!index_) {
      index_.emplace(0, Ref{&pairs_}, Ref{&pairs_});
      for (std::size_t i = 0; i < last; ++i) index_->insert(i);
    }
    auto [it, inserted] = index_->insert(last);
    if (!inserted) return *it;
    return std::nullopt;
  }

 private:
  static constexpr std::size_t kLinear = 24;
  struct Ref {
    const std::vector<Node::Entry>* pairs;
    std::size_t operator()(std::size_t i) const {
      return std::hash<std::string_view>{}((*pairs)[i].first.value);
    }
    bool operator()(std::size_t a, std::size_t b) const {
      return (*pairs)[a].first.value == (*pairs)[b].first.value;
    }
  };
  const std::vector<Node::Entry>& pairs_;
  // Made only for large mappings: most never need it.
  std::optional<std::unordered_set<std::size_t, Ref, Ref>> index_;
};

// Frees an event when the scope that parsed it ends.
struct EventGuard {
  yaml_event_t* event;
  ~EventGuard() { yaml_event_delete(event); }
};

class Builder {
 public:
  Builder(std::string_view text, const std::string& file, Diagnostics& diags, const Limits& limits,
          Arena& arena)
      : text_(text), file_(file), diags_(diags), limits_(limits), arena_(arena) {}
  // Buffers that a large file grew are given back; small ones are kept for
  // the next file.
  ~Builder() {
    for (auto& level : scratch_) {
      if (level.items.capacity() > kKeep) std::vector<Node>().swap(level.items);
      if (level.pairs.capacity() > kKeep) std::vector<Node::Entry>().swap(level.pairs);
    }
  }
  Builder(const Builder&) = delete;
  Builder& operator=(const Builder&) = delete;

  // The root node, or nullopt when an error was reported.
  std::optional<Node> run() {
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
      diags_.error(file_, {}, Code::YamlSyntax, "cannot initialise the YAML parser");
      return std::nullopt;
    }
    std::unique_ptr<yaml_parser_t, void (*)(yaml_parser_t*)> guard(&parser, yaml_parser_delete);
    yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text_.data()),
                                 text_.size());
    parser_ = &parser;

    std::optional<Node> root;
    int documents = 0;
    while (true) {
      yaml_event_t event;
      if (!next(event)) return std::nullopt;
      EventGuard ev{&event};
      switch (event.type) {
        case YAML_STREAM_END_EVENT:
          if (failed_) return std::nullopt;
          if (!root) {
            Node empty;
            empty.plain = true;
            empty.mark = {1, 1};
            return empty;
          }
          return root;
        case YAML_DOCUMENT_START_EVENT:
          if (event.data.document_start.tag_directives.start !=
              event.data.document_start.tag_directives.end) {
            error(to_mark(event.start_mark), Code::YamlTag, "Tag prefixes are unsupported");
          }
          if (++documents > 1) {
            error(to_mark(event.start_mark), Code::YamlSyntax,
                  "only one YAML document per file is supported");
            return std::nullopt;
          }
          break;
        case YAML_DOCUMENT_END_EVENT:
        case YAML_STREAM_START_EVENT:
          break;
        default: {
          Node node;
          if (!build(node, event, 1)) return std::nullopt;
          root = std::move(node);
          break;
        }
      }
    }
  }

 private:
  bool next(yaml_event_t& event) {
    if (yaml_parser_parse(parser_, &event)) return true;
    report_parser_error();
    return false;
  }

  void report_parser_error() {
    const yaml_parser_t& p = *parser_;
    std::string problem = p.problem ? p.problem : "unknown error";
    if (p.error == YAML_READER_ERROR) {
      std::string msg = problem;
      if (p.problem_value != -1 && problem.find("UTF-8") == std::string::npos)
        msg += " (#x" + hex(p.problem_value) + ")";
      error(mark_of_offset(text_, p.problem_offset), Code::YamlEncoding, msg);
      return;
    }
    std::string msg;
    if (p.context) msg = std::string(p.context) + ": ";
    msg += problem;
    if (p.context && p.context_mark.line != p.problem_mark.line) {
      msg += " (the construct began at line " + std::to_string(p.context_mark.line + 1) + ")";
    }
    error(to_mark(p.problem_mark), Code::YamlSyntax, msg);
  }

  static std::string hex(int v) {
    std::ostringstream s;
    s << std::hex << v;
    return s.str();
  }

  void error(Mark mark, Code code, std::string message) {
    diags_.error(file_, mark, code, std::move(message));
    failed_ = true;
  }

  // Validates a tag and returns the local tag name ("" for none), kept in
  // the arena.
  std::optional<std::string_view> check_tag(const yaml_char_t* raw, Mark mark) {
    if (!raw) return std::string_view{};
    std::string_view tag(reinterpret_cast<const char*>(raw));
    if (tag == "!") {
      error(mark, Code::YamlTag, "an empty tag '!' is not allowed");
      return std::nullopt;
    }
    if (tag.starts_with("!*Include")) {
      error(mark, Code::YamlTag, "Includes are not supported");
      return std::nullopt;
    }
    if (tag.size() < 2 || tag[0] != '!' || tag[1] == '!' || tag[1] == '<') {
      error(mark, Code::YamlTag, "Global tags are unsupported (" + std::string(tag) + ")");
      return std::nullopt;
    }
    return arena_.text(tag);
  }

  bool charge(std::size_t nodes, std::size_t bytes, Mark mark) {
    nodes_ += nodes;
    bytes_ += bytes;
    if (nodes_ > limits_.max_nodes) {
      error(mark, Code::YamlAlias,
            "document expands to more than " + std::to_string(limits_.max_nodes) +
                " nodes (alias bomb?)");
      return false;
    }
    // Few nodes can still be many bytes: one long scalar aliased again and
    // again.
    if (bytes_ > limits_.max_expanded_bytes) {
      error(mark, Code::YamlAlias,
            "document expands to more than " + std::to_string(limits_.max_expanded_bytes) +
                " bytes of scalars (alias bomb?)");
      return false;
    }
    return true;
  }

  // An anchored node and the nodes and scalar bytes it stands for once built
  // (merged duplicates and unpacked wrappers not counted), charged again at
  // every alias (the subtree itself is shared, not copied).
  struct Anchor {
    Node node;
    Size size;
  };
  // Inline test, out-of-line store: most nodes have no anchor.
  void remember_anchor(const char* anchor, const Node& node) {
    if (anchor && *anchor) [[unlikely]]
      store_anchor(anchor, node);
  }
  [[gnu::noinline]] void store_anchor(const char* anchor, const Node& node) {
    Size size;
    add_size(node, size);
    anchors_[anchor] = Anchor{node, size};
  }

  // Children under construction, one buffer per nesting depth, reused for
  // every sequence or mapping at that depth and, per thread, for every file
  // read (only one Builder runs at a time on a thread), so that they grow
  // once instead of once per file. A finished node's children are copied
  // to the arena, exactly sized. (A deque: deeper levels are added without moving the buffers
  // that shallower levels are filling.)
  struct Scratch {
    std::vector<Node> items;
    std::vector<Node::Entry> pairs;
  };
  static constexpr std::size_t kKeep = 64;
  static std::deque<Scratch>& scratch_pool() {
    thread_local std::deque<Scratch> pool;
    return pool;
  }
  Scratch& scratch(int depth) {
    while (scratch_.size() <= static_cast<std::size_t>(depth)) scratch_.emplace_back();
    return scratch_[static_cast<std::size_t>(depth)];
  }
  // The buffer for a new node's children.
  template <class T>
  static std::vector<T>& ready(std::vector<T>& buffer) {
    buffer.clear();  // left over only if an earlier build stopped half way
    return buffer;
  }
  // Copies the finished children into the arena, exactly sized.
  template <class T>
  std::span<const T> take(std::vector<T>& buffer) {
    auto out = arena_.copy(std::span<const T>(buffer));
    buffer.clear();
    return out;
  }

  // Builds the node that starts with `event` into `out`.
  bool build(Node& out, const yaml_event_t& event, int depth) {
    Mark mark = to_mark(event.start_mark);
    if (depth > limits_.max_depth) {
      error(mark, Code::YamlDepth,
            "nesting is deeper than " + std::to_string(limits_.max_depth) + " levels");
      return false;
    }
    switch (event.type) {
      case YAML_ALIAS_EVENT: {
        std::string name = reinterpret_cast<const char*>(event.data.alias.anchor);
        auto it = anchors_.find(name);
        if (it == anchors_.end()) {
          error(mark, Code::YamlAlias, "undefined alias *" + name);
          return false;
        }
        if (!charge(it->second.size.nodes, it->second.size.bytes, mark)) return false;
        out = it->second.node;
        return true;
      }
      case YAML_SCALAR_EVENT: {
        if (!charge(1, event.data.scalar.length, mark)) return false;
        if (event.data.scalar.tag) {
          auto tag = check_tag(event.data.scalar.tag, mark);
          if (!tag) return false;
          out.tag = *tag;
        }
        out.kind = Node::Kind::Scalar;
        out.mark = mark;
        out.value = arena_.text(
            {reinterpret_cast<const char*>(event.data.scalar.value), event.data.scalar.length});
        out.plain = event.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        remember_anchor(reinterpret_cast<const char*>(event.data.scalar.anchor), out);
        return true;
      }
      case YAML_SEQUENCE_START_EVENT:
        return build_sequence(out, event, mark, depth);
      case YAML_MAPPING_START_EVENT:
        return build_mapping(out, event, mark, depth);
      default:
        error(mark, Code::YamlSyntax, "unexpected YAML event");
        return false;
    }
  }

  bool build_sequence(Node& seq, const yaml_event_t& start, Mark mark, int depth) {
    if (!charge(1, 0, mark)) return false;
    if (start.data.sequence_start.tag) {
      auto tag = check_tag(start.data.sequence_start.tag, mark);
      if (!tag) return false;
      seq.tag = *tag;
    }
    seq.kind = Node::Kind::Sequence;
    seq.mark = mark;
    // Owned by `start`, which outlives this call.
    const char* anchor = reinterpret_cast<const char*>(start.data.sequence_start.anchor);
    std::vector<Node>& items = ready(scratch(depth).items);
    while (true) {
      yaml_event_t event;
      if (!next(event)) return false;
      EventGuard ev{&event};
      if (event.type == YAML_SEQUENCE_END_EVENT) break;
      if (!build(items.emplace_back(), event, depth + 1)) return false;
      if (items.back().tag == "!*Unpack") {
        const Node item = items.back();
        items.pop_back();
        if (!item.is_sequence()) {
          error(item.mark, Code::YamlTag, "!*Unpack expects a sequence");
          return false;
        }
        for (const auto& inner : item.items) {
          if (inner.is_sequence() && inner.tag.empty()) {
            items.insert(items.end(), inner.items.begin(), inner.items.end());
          } else {
            items.push_back(inner);
          }
        }
      }
    }
    seq.items = take(items);
    remember_anchor(anchor, seq);
    return true;
  }

  bool build_mapping(Node& map, const yaml_event_t& start, Mark mark, int depth) {
    if (!charge(1, 0, mark)) return false;
    if (start.data.mapping_start.tag) {
      auto tag = check_tag(start.data.mapping_start.tag, mark);
      if (!tag) return false;
      map.tag = *tag;
    }
    map.kind = Node::Kind::Mapping;
    map.mark = mark;
    // Owned by `start`, which outlives this call.
    const char* anchor = reinterpret_cast<const char*>(start.data.mapping_start.anchor);
    std::vector<Node::Entry>& pairs = ready(scratch(depth).pairs);
    std::vector<Node> merges;
    KeySet seen(pairs);
    bool ok = true;
    while (true) {
      yaml_event_t event;
      if (!next(event)) return false;
      EventGuard ev{&event};
      if (event.type == YAML_MAPPING_END_EVENT) break;
      // Deeper levels use other buffers, so `entry` stays where it is.
      Node::Entry& entry = pairs.emplace_back();
      if (!build(entry.first, event, depth + 1)) return false;
      yaml_event_t value_event;
      if (!next(value_event)) return false;
      EventGuard vev{&value_event};
      if (!build(entry.second, value_event, depth + 1)) return false;
      if (!entry.first.is_scalar()) {
        error(entry.first.mark, Code::YamlKey, "Non scalar keys are not supported");
        pairs.pop_back();
        ok = false;
        continue;
      }
      if (entry.first.plain && entry.first.tag.empty() && entry.first.value == "<<") {
        merges.push_back(entry.second);
        pairs.pop_back();
        continue;
      }
      if (auto first = seen.add_last()) {
        const Node& dup = pairs.back().first;
        error(dup.mark, Code::YamlDuplicateKey,
              "Duplicate key \"" + std::string(dup.value) + "\" (first at line " +
                  std::to_string(pairs[*first].first.mark.line) + ")");
        pairs.pop_back();
        ok = false;
        continue;
      }
    }
    if (!ok) return false;
    // Merged keys never override keys written in the mapping itself; among
    // merged mappings the first one listed wins.
    for (const auto& merge : merges) {
      std::vector<const Node*> sources;
      if (merge.is_mapping()) {
        sources.push_back(&merge);
      } else if (merge.is_sequence()) {
        for (const auto& item : merge.items) sources.push_back(&item);
      }
      if (sources.empty() && !merge.is_mapping()) {
        error(merge.mark, Code::YamlMerge, "the value of << must be a mapping or a list of them");
        return false;
      }
      for (const Node* src : sources) {
        if (!src->is_mapping()) {
          error(src->mark, Code::YamlMerge, "the value of << must be a mapping or a list of them");
          return false;
        }
        // Shared, not copied: nodes are views into the arena.
        for (const auto& entry : src->pairs) {
          pairs.push_back(entry);
          if (seen.add_last()) pairs.pop_back();
        }
      }
    }
    map.pairs = take(pairs);
    remember_anchor(anchor, map);
    return true;
  }

  std::string_view text_;
  const std::string& file_;
  Diagnostics& diags_;
  const Limits& limits_;
  Arena& arena_;
  yaml_parser_t* parser_ = nullptr;
  std::map<std::string, Anchor> anchors_;
  std::deque<Scratch>& scratch_ = scratch_pool();
  std::size_t nodes_ = 0;
  std::size_t bytes_ = 0;
  bool failed_ = false;
};

}  // namespace

namespace {

std::string_view file_kind(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFDIR:
      return "a directory";
    case S_IFCHR:
      return "a character device";
    case S_IFBLK:
      return "a block device";
    case S_IFIFO:
      return "a FIFO";
    case S_IFSOCK:
      return "a socket";
    case S_IFLNK:
      return "a symlink";
    default:
      return "not a regular file";
  }
}

void unreadable(const std::string& display, Diagnostics& diags, std::string_view why) {
  diags.error(display, {}, Code::FileUnreadable, "Error reading file: " + std::string(why));
}

std::string too_large(const Limits& limits) {
  return "file is larger than the limit of " + std::to_string(limits.max_file_bytes) + " bytes";
}

}  // namespace

std::optional<Tree> parse(std::string_view text, const std::string& file, Diagnostics& diags,
                          const Limits& limits) {
  if (text.size() > limits.max_file_bytes) {
    diags.error(file, {}, Code::FileTooLarge, too_large(limits));
    return std::nullopt;
  }
  // libyaml treats NUL as end of input in some paths; reject it up front.
  if (auto nul = text.find('\0'); nul != std::string_view::npos) {
    diags.error(file, mark_of_offset(text, nul), Code::YamlEncoding,
                "NUL bytes are not allowed in configuration files");
    return std::nullopt;
  }
  // Nodes take about ten times the bytes of their text; one block usually
  // holds a whole file.
  Tree tree(text.size() * 10 + 256);
  auto root = Builder(text, file, diags, limits, tree.arena()).run();
  if (!root) return std::nullopt;
  tree.set_root(*root);
  return tree;
}

namespace {
ReadObserver g_read_observer = nullptr;
}  // namespace

void set_read_observer(ReadObserver observer) noexcept {
  g_read_observer = observer;
}

std::optional<std::string> read_opened(int path_fd, const std::string& display, Diagnostics& diags,
                                       const Limits& limits) {
  UniqueFd path(path_fd);
  if (g_read_observer != nullptr) g_read_observer(display);
  struct stat st {};
  if (::fstat(path.get(), &st) != 0) {
    unreadable(display, diags, std::strerror(errno));
    return std::nullopt;
  }
  if (!S_ISREG(st.st_mode)) {
    unreadable(display, diags, "not a regular file (" + std::string(file_kind(st.st_mode)) + ")");
    return std::nullopt;
  }
  if (static_cast<std::uint64_t>(st.st_size) > limits.max_file_bytes) {
    diags.error(display, {}, Code::FileTooLarge, too_large(limits));
    return std::nullopt;
  }
  // The magic link names the inode the O_PATH descriptor holds, not a path
  // that could have been swapped since: the type checked above is the type
  // opened here. (openat2 cannot reopen a descriptor with an empty path.)
  char proc_path[40];
  std::snprintf(proc_path, sizeof proc_path, "/proc/self/fd/%d", path.get());
  UniqueFd file(::open(proc_path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!file) {
    unreadable(display, diags, std::strerror(errno));
    return std::nullopt;
  }
  path.reset();
  // A config usually takes one read (read_all's size hint); the file may
  // still have grown since fstat.
  auto text = read_all(file.get(), {.max_bytes = limits.max_file_bytes,
                                    .expected_size = static_cast<std::size_t>(st.st_size)});
  if (!text) {
    if (text.error() == EFBIG)
      diags.error(display, {}, Code::FileTooLarge, too_large(limits));
    else
      unreadable(display, diags, std::strerror(text.error()));
    return std::nullopt;
  }
  return std::move(*text);
}

std::optional<std::string> read_text(const std::string& path, Diagnostics& diags,
                                     const Limits& limits) {
  // Symlinks are followed (a sandbox config may be one): the type test
  // applies to the target, which is still not opened unless regular.
  int fd = ::open(path.c_str(), O_PATH | O_CLOEXEC);
  if (fd < 0) {
    unreadable(path, diags, std::strerror(errno));
    return std::nullopt;
  }
  return read_opened(fd, path, diags, limits);
}

std::optional<Tree> load_file(const std::string& path, Diagnostics& diags, Sources* sources,
                              const Limits& limits) {
  auto text = read_text(path, diags, limits);
  if (!text) return std::nullopt;
  auto node = parse(*text, path, diags, limits);
  if (sources) sources->add(path, std::move(*text));
  return node;
}

namespace {

int write_to_string(void* data, unsigned char* buffer, size_t size) {
  static_cast<std::string*>(data)->append(reinterpret_cast<char*>(buffer), size);
  return 1;
}

yaml_char_t* chars(const std::string& s) {
  return reinterpret_cast<yaml_char_t*>(const_cast<char*>(s.c_str()));
}
// For values passed with their length (libyaml copies them, and wants a
// pointer even for an empty value).
yaml_char_t* chars(std::string_view s) {
  static char empty[] = "";
  return reinterpret_cast<yaml_char_t*>(s.empty() ? empty : const_cast<char*>(s.data()));
}

bool emit_node(yaml_emitter_t* emitter, const Node& node) {
  yaml_event_t event;
  const std::string tag_text(node.tag);  // libyaml wants it NUL-terminated
  yaml_char_t* tag = node.tag.empty() ? nullptr : chars(tag_text);
  int implicit = node.tag.empty() ? 1 : 0;
  switch (node.kind) {
    case Node::Kind::Scalar: {
      yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;
      // Strings that would read back as something else when plain: the
      // nulls, and `<<`, which is a merge key in key position.
      if (!node.plain &&
          (node.value.empty() || node.value == "~" || node.value == "null" || node.value == "<<")) {
        style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
      }
      if (node.plain) style = YAML_PLAIN_SCALAR_STYLE;
      yaml_scalar_event_initialize(&event, nullptr, tag, chars(node.value),
                                   static_cast<int>(node.value.size()), implicit, implicit, style);
      return yaml_emitter_emit(emitter, &event) != 0;
    }
    case Node::Kind::Sequence:
      yaml_sequence_start_event_initialize(
          &event, nullptr, tag, implicit,
          node.items.empty() ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE);
      if (!yaml_emitter_emit(emitter, &event)) return false;
      for (const auto& item : node.items)
        if (!emit_node(emitter, item)) return false;
      yaml_sequence_end_event_initialize(&event);
      return yaml_emitter_emit(emitter, &event) != 0;
    case Node::Kind::Mapping:
      yaml_mapping_start_event_initialize(
          &event, nullptr, tag, implicit,
          node.pairs.empty() ? YAML_FLOW_MAPPING_STYLE : YAML_BLOCK_MAPPING_STYLE);
      if (!yaml_emitter_emit(emitter, &event)) return false;
      for (const auto& [k, v] : node.pairs) {
        if (!emit_node(emitter, k) || !emit_node(emitter, v)) return false;
      }
      yaml_mapping_end_event_initialize(&event);
      return yaml_emitter_emit(emitter, &event) != 0;
  }
  return false;
}

}  // namespace

std::string emit(const Node& node) {
  std::string out;
  yaml_emitter_t emitter;
  if (!yaml_emitter_initialize(&emitter)) return out;
  yaml_emitter_set_output(&emitter, write_to_string, &out);
  yaml_emitter_set_unicode(&emitter, 1);
  yaml_emitter_set_width(&emitter, -1);
  yaml_event_t event;
  yaml_stream_start_event_initialize(&event, YAML_UTF8_ENCODING);
  bool ok = yaml_emitter_emit(&emitter, &event) != 0;
  yaml_document_start_event_initialize(&event, nullptr, nullptr, nullptr, 1);
  ok = ok && yaml_emitter_emit(&emitter, &event) != 0;
  ok = ok && emit_node(&emitter, node);
  yaml_document_end_event_initialize(&event, 1);
  ok = ok && yaml_emitter_emit(&emitter, &event) != 0;
  yaml_stream_end_event_initialize(&event);
  ok = ok && yaml_emitter_emit(&emitter, &event) != 0;
  yaml_emitter_delete(&emitter);
  if (!ok) out.clear();
  return out;
}

}  // namespace lithos::policy::yaml

// The generated config key reference (lithos/policy/reference.hpp,
// docs/config-reference.md): walking the field tables themselves, every key
// of every table has a row with its default as the printer writes it and a
// non-empty doc sentence, and every tag of a tagged union has a documented
// row. A key added without a doc fails here; a stale committed file fails
// the CTest test ConfigReferenceIsCurrent.
#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "lithos/policy/config.hpp"
#include "lithos/policy/reference.hpp"

using namespace lithos::policy;

namespace {

// The value the printer writes for `key` at the top level of `printed`: ""
// when the value is a block collection on the following lines.
std::string printed_value(const std::string& printed, const std::string& key) {
  const std::string start = key + ":";
  std::size_t at = 0;
  while (at < printed.size()) {
    std::size_t end = printed.find('\n', at);
    if (end == std::string::npos) end = printed.size();
    const std::string_view line(printed.data() + at, end - at);
    if (line.starts_with(start)) {
      std::string_view rest = line.substr(start.size());
      if (rest.empty()) return "";
      if (rest.starts_with(" ")) return std::string(rest.substr(1));
    }
    at = end + 1;
  }
  ADD_FAILURE() << "the printer wrote no key " << key << " in:\n" << printed;
  return "";
}

// The cells of a Markdown table row (`\|` does not end a cell).
std::vector<std::string> cells(std::string_view row) {
  std::vector<std::string> out;
  std::string current;
  for (std::size_t i = 0; i < row.size(); ++i) {
    if (row[i] == '\\' && i + 1 < row.size() && row[i + 1] == '|') {
      current += '|';
      ++i;
    } else if (row[i] == '|') {
      out.push_back(current);
      current.clear();
    } else {
      current += row[i];
    }
  }
  // Drop the text before the first and after the last `|`; trim the cells.
  if (!out.empty()) out.erase(out.begin());
  for (auto& c : out) {
    while (!c.empty() && c.front() == ' ') c.erase(0, 1);
    while (!c.empty() && c.back() == ' ') c.pop_back();
  }
  return out;
}

// Reads the reference in walk order: each table is looked for after the
// previous one, so a key is found in its own struct's table.
struct Checker {
  const std::string& text;
  std::size_t cursor = 0;
  std::size_t keys = 0, tags = 0;

  // The lines of the next table at or after `from`, which ends at a blank line.
  std::vector<std::string> table_after(std::size_t from) {
    std::vector<std::string> rows;
    const std::size_t start = text.find("\n|", from);
    if (start == std::string::npos) return rows;
    std::size_t at = start + 1;
    while (at < text.size() && text[at] == '|') {
      std::size_t end = text.find('\n', at);
      if (end == std::string::npos) end = text.size();
      rows.push_back(text.substr(at, end - at));
      at = end + 1;
    }
    cursor = at;
    return rows;
  }

  static const std::string* row_of(const std::vector<std::string>& rows, const std::string& first) {
    for (const auto& row : rows)
      if (cells(row).size() >= 1 && cells(row)[0] == first) return &row;
    return nullptr;
  }

  template <class S>
  void structure(std::string_view key) {
    std::size_t from = cursor;
    if (!key.empty()) {
      const std::string heading = "\n### " + std::string(Schema<S>::name) + "\n";
      from = text.find(heading, cursor);
      ASSERT_NE(from, std::string::npos) << "no table for " << Schema<S>::name;
    }
    const auto rows = table_after(from);
    ASSERT_FALSE(rows.empty()) << "no table for " << Schema<S>::name;
    EXPECT_EQ(cells(rows[0]), (std::vector<std::string>{"Key", "Type", "Default", "Meaning"}));
    const std::string printed = print<schema::Struct<S>>(S{});
    std::apply([&](const auto&... f) { (check_field<S>(f, rows, printed), ...); },
               Schema<S>::fields);
  }

  template <class S, class F>
  void check_field(const F& f, const std::vector<std::string>& rows, const std::string& printed) {
    ++keys;
    const std::string key = schema::dashed(f.name);
    const std::string where = std::string(Schema<S>::name) + " key " + key;
    EXPECT_FALSE(f.doc.empty()) << where << " has no doc in its field table";
    const std::string* row = row_of(rows, "`" + key + "`");
    ASSERT_NE(row, nullptr) << where << " has no row in the reference";
    const auto c = cells(*row);
    ASSERT_EQ(c.size(), 4u) << *row;
    EXPECT_FALSE(c[1].empty()) << where << ": no type";
    EXPECT_EQ(c[3], f.doc) << where;
    // The default as printed for a file without the key.
    const std::string value = printed_value(printed, key);
    if (f.presence == schema::Presence::Required) {
      EXPECT_EQ(c[2], "*required*") << where;
    } else if (f.presence == schema::Presence::Optional && value == "~") {
      EXPECT_EQ(c[2], "*none*") << where;
    } else if (value.empty()) {  // a block collection: shown in flow style
      EXPECT_TRUE(c[2].starts_with("`{") || c[2].starts_with("`[")) << where << ": " << c[2];
    } else {
      EXPECT_EQ(c[2], "`" + value + "`") << where;
    }
  }

  template <class... Alts>
  void tagged(std::string_view key) {
    const std::string heading = "\n### Tags of `" + std::string(key) + "`\n";
    const std::size_t from = text.find(heading, cursor);
    ASSERT_NE(from, std::string::npos) << "no tag table for " << key;
    const auto rows = table_after(from);
    (check_tag<Alts>(rows), ...);
  }

  template <class Alt>
  void check_tag(const std::vector<std::string>& rows) {
    ++tags;
    const std::string tag(Schema<Alt>::tag);
    std::string_view doc;
    if constexpr (requires { Schema<Alt>::doc; }) doc = Schema<Alt>::doc;
    EXPECT_FALSE(doc.empty()) << tag << " has no doc in its schema";
    const std::string* row = row_of(rows, "`" + tag + "`");
    ASSERT_NE(row, nullptr) << tag << " has no row in the reference";
    const auto c = cells(*row);
    ASSERT_EQ(c.size(), 3u) << *row;
    EXPECT_FALSE(c[1].empty()) << tag;
    EXPECT_EQ(c[2], doc) << tag;
  }

  template <class C>
  void file(std::string_view title) {
    const std::size_t at = text.find("\n## " + std::string(title) + "\n");
    ASSERT_NE(at, std::string::npos) << "no section " << title;
    ASSERT_GE(at, cursor) << title << " is out of order";
    cursor = at + 1;
    reference::walk<C>(*this);
  }
};

TEST(ConfigReference, EveryKeyHasARowWithItsDefaultAndDoc) {
  const std::string text = reference::markdown();
  Checker checker{text};
  checker.file<MasterCodec>("Master config");
  checker.file<SandboxCodec>("Sandbox config");
  checker.file<ProcessConfigCodec>("Process config");
  checker.file<ContainerCodec>("Container config");
  // Every table was walked (the count moves only when keys are added).
  EXPECT_GT(checker.keys, 100u);
  EXPECT_EQ(checker.tags, 8u);  // 4 volume and 4 variable tags
}

TEST(ConfigReference, SaysItIsGeneratedAndHow) {
  const std::string text = reference::markdown();
  const std::string first = text.substr(0, text.find('\n'));
  EXPECT_NE(first.find("Generated"), std::string::npos) << first;
  EXPECT_NE(first.find(reference::kRegenerate), std::string::npos) << first;
}

TEST(ConfigReference, TypesComeFromTheCodecs) {
  EXPECT_EQ(reference::type_name<schema::Path>(), "path");
  EXPECT_EQ((reference::type_name<schema::Numeric<std::uint32_t, 1, 16>>()), "integer 1 to 16");
  EXPECT_EQ(reference::type_name<schema::Numeric<std::uint64_t>>(), "integer");
  EXPECT_EQ(reference::type_name<schema::Seq<schema::RangeCodec>>(), "list of range");
  EXPECT_EQ(reference::type_name<schema::Enum<ContainerKind>>(),
            "one of Daemon|Command|CommandOrDaemon");
  EXPECT_EQ(reference::type_name<schema::Map<schema::Tagged<Volume>>>(),
            "map of string to !Readonly|!Persistent|!Statedir|!Tmpfs");
  EXPECT_EQ(reference::type_name<schema::Seconds<86400>>(), "seconds 0 to 86400");
}

TEST(ConfigReference, DefaultsAreWrittenAsThePrinterWritesThem) {
  const auto& master = std::get<0>(Schema<MasterConfig>::fields);  // sandboxes-dir
  EXPECT_EQ(reference::default_cell(master), "`./sandboxes`");
  const auto& seccomp = std::get<22>(Schema<SandboxConfig>::fields);
  ASSERT_EQ(seccomp.name, "seccomp");
  EXPECT_EQ(reference::default_cell(seccomp), "`{profile: default, allow: [], deny: []}`");
  const auto& oom_group = std::get<12>(Schema<ContainerConfig>::fields);
  ASSERT_EQ(oom_group.name, "memory_oom_group");
  EXPECT_EQ(reference::default_cell(oom_group), "`false`");
  const auto& executable = std::get<19>(Schema<ContainerConfig>::fields);
  ASSERT_EQ(executable.name, "executable");
  EXPECT_EQ(reference::default_cell(executable), "*required*");
  const auto& pids = std::get<9>(Schema<ContainerConfig>::fields);
  ASSERT_EQ(pids.name, "pids_limit");
  EXPECT_EQ(reference::default_cell(pids), "*none*");
  const auto& activation = std::get<0>(Schema<TcpPortVariable>::fields);
  EXPECT_EQ(reference::default_cell(activation), "`none`");  // the value, not unset
}

}  // namespace

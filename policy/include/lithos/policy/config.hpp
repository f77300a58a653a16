// Loading one config file of any of the four kinds into a typed document.
#pragma once

#include <algorithm>
#include <memory>
#include <optional>
#include <string>

#include "lithos/policy/container.hpp"
#include "lithos/policy/master.hpp"
#include "lithos/policy/process.hpp"
#include "lithos/policy/sandbox.hpp"
#include "lithos/policy/schema.hpp"
#include "lithos/policy/yaml.hpp"

namespace lithos::policy {

template <class C>
using Loaded = schema::Document<typename C::value_type>;

// Decodes a parsed YAML tree, keeping what decoded even when errors were
// reported (`complete` is then false): a broken sandbox config still names
// its image-dir and config-file for the checks that can go on without it.
// The tree is kept by the document, whose marks are recorded only when first
// asked for (a second decode of the same tree, see MarkTable).
template <class C>
Loaded<C> decode_node_keeping(yaml::Tree tree, const std::string& file, Diagnostics& diags,
                              bool& complete) {
  Loaded<C> doc;
  doc.file = file;
  schema::Context ctx(file, diags, nullptr);
  std::size_t before = diags.error_count();
  std::size_t first_new = diags.size();
  bool ok = schema::decode_document<C>(tree.root(), ctx, doc.value);
  // Report a file's findings in reading order.
  std::stable_sort(diags.items().begin() + static_cast<std::ptrdiff_t>(first_new),
                   diags.items().end(), [](const Diagnostic& a, const Diagnostic& b) {
                     return std::pair(a.mark.line, a.mark.column) <
                            std::pair(b.mark.line, b.mark.column);
                   });
  complete = ok && diags.error_count() == before;
  auto kept = std::make_shared<const yaml::Tree>(std::move(tree));
  doc.marks.fill_on_demand([kept, file](schema::MarkTable& marks) {
    Diagnostics repeated;  // the same decode ran already; nothing new to say
    schema::Context recording(file, repeated, &marks);
    typename C::value_type unused{};
    schema::decode_document<C>(kept->root(), recording, unused);
  });
  return doc;
}

// Decodes a parsed YAML tree; nullopt when any error was reported.
template <class C>
std::optional<Loaded<C>> decode_node(yaml::Tree tree, const std::string& file, Diagnostics& diags) {
  bool complete = false;
  auto doc = decode_node_keeping<C>(std::move(tree), file, diags, complete);
  if (!complete) return std::nullopt;
  return doc;
}

template <class C>
std::optional<Loaded<C>> decode_text(std::string_view text, const std::string& file,
                                     Diagnostics& diags) {
  auto root = yaml::parse(text, file, diags);
  if (!root) return std::nullopt;
  return decode_node<C>(std::move(*root), file, diags);
}

template <class C>
std::optional<Loaded<C>> load_config(const std::string& path, Diagnostics& diags,
                                     Sources* sources = nullptr) {
  auto root = yaml::load_file(path, diags, sources);
  if (!root) return std::nullopt;
  return decode_node<C>(std::move(*root), path, diags);
}

using MasterCodec = schema::Struct<MasterConfig>;
using SandboxCodec = schema::Struct<SandboxConfig>;
using ContainerCodec = schema::Struct<ContainerConfig>;

// The canonical, fully defaulted YAML text of a config value.
template <class C>
std::string print(const typename C::value_type& value) {
  yaml::Arena arena;
  return yaml::emit(C::encode(value, arena));
}

}  // namespace lithos::policy

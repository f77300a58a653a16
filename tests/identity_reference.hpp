// The three identity writers as they were before identity.cpp replaced them
// (the printable-ASCII fast path, the nlohmann instance identity and the
// config-log JSON), kept verbatim as the reference the single encoder must
// match byte for byte: the tree compares identities as bytes to adopt a
// running child, so any drift would restart every instance on upgrade.
#pragma once

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lithos/policy/check.hpp"

namespace lithos::policy::reference {

inline std::string kind_text(ProcessKind k) {
  return schema::Enum<ProcessKind>::name_of(k);
}

inline bool plain_json_text(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7E; });
}

inline void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

inline std::optional<std::string> plain_identity(const ProcessEntry& entry,
                                                 const std::optional<scalars::IpAddress>& ip,
                                                 ProcessKind kind) {
  if (!plain_json_text(entry.image) || !plain_json_text(entry.config)) return std::nullopt;
  for (const auto& [k, v] : entry.variables)
    if (!plain_json_text(k) || !plain_json_text(v)) return std::nullopt;
  for (const auto& ns : entry.extra_secrets_namespaces)
    if (!plain_json_text(ns)) return std::nullopt;
  std::string out;
  out.reserve(64 + entry.image.size() + entry.config.size() + 32 * entry.variables.size());
  out += "{\"instances\":1,\"image\":";
  append_json_string(out, entry.image);
  out += ",\"config\":";
  append_json_string(out, entry.config);
  if (!entry.variables.empty()) {
    out += ",\"variables\":{";
    bool first = true;
    for (const auto& [k, v] : entry.variables) {
      if (!first) out += ',';
      first = false;
      append_json_string(out, k);
      out += ':';
      append_json_string(out, v);
    }
    out += '}';
  }
  if (!entry.extra_secrets_namespaces.empty()) {
    out += ",\"extra_secrets_namespaces\":[";
    bool first = true;
    for (const auto& ns : entry.extra_secrets_namespaces) {
      if (!first) out += ',';
      first = false;
      append_json_string(out, ns);
    }
    out += ']';
  }
  if (ip) {
    out += ",\"ip_address\":";
    append_json_string(out, scalars::format_ip(*ip));
  }
  out += ",\"kind\":";
  append_json_string(out, kind_text(kind));
  out += '}';
  return out;
}

inline std::string instance_identity(const ProcessEntry& entry,
                                     std::optional<scalars::IpAddress> ip, ProcessKind kind) {
  if (auto fast = plain_identity(entry, ip, kind)) return std::move(*fast);
  nlohmann::ordered_json j;
  j["instances"] = 1;
  j["image"] = entry.image;
  j["config"] = entry.config;
  if (!entry.variables.empty()) {
    nlohmann::ordered_json vars = nlohmann::ordered_json::object();
    for (const auto& [k, v] : entry.variables) vars[k] = v;
    j["variables"] = vars;
  }
  if (!entry.extra_secrets_namespaces.empty())
    j["extra_secrets_namespaces"] = entry.extra_secrets_namespaces;
  if (ip) j["ip_address"] = scalars::format_ip(*ip);
  j["kind"] = kind_text(kind);
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

inline std::string process_config_json(const ProcessConfig& config) {
  nlohmann::ordered_json all = nlohmann::ordered_json::object();
  for (const auto& [name, entry] : config) {
    nlohmann::ordered_json j;
    j["instances"] = entry.instances;
    j["image"] = entry.image;
    j["config"] = entry.config;
    if (!entry.variables.empty()) {
      nlohmann::ordered_json vars = nlohmann::ordered_json::object();
      for (const auto& [k, v] : entry.variables) vars[k] = v;
      j["variables"] = vars;
    }
    if (!entry.extra_secrets_namespaces.empty())
      j["extra_secrets_namespaces"] = entry.extra_secrets_namespaces;
    if (!entry.ip_addresses.empty()) {
      std::vector<std::string> ips;
      for (const auto& ip : entry.ip_addresses) ips.push_back(scalars::format_ip(ip));
      j["ip_addresses"] = ips;
    }
    j["kind"] = kind_text(entry.kind);
    all[name] = j;
  }
  return all.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace lithos::policy::reference

// lithos_check: validates a host's configuration (or single container
// configs) and reports every problem in one run. Exit 0 valid, 1 invalid,
// 2 usage error.
#include <CLI/CLI.hpp>

#include <netdb.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli.hpp"
#include "lithos/policy/audit.hpp"
#include "lithos/policy/check.hpp"
#include "lithos/policy/report.hpp"
#include "lithos/runtime/cgroups.hpp"

using namespace lithos::policy;

namespace {

std::string own_dir() {
  char buffer[4096];
  ssize_t n = ::readlink("/proc/self/exe", buffer, sizeof buffer - 1);
  if (n <= 0) return ".";
  return parent_dir(std::string(buffer, static_cast<std::size_t>(n)));
}

bool is_regular_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

void print_host_info(Diagnostics& diags, const std::string& master_file) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) {
    diags.error(master_file, {}, Code::Host, "cannot get the host name");
    return;
  }
  std::printf("Hostname is %s\n", host);
  addrinfo hints{};
  hints.ai_family = AF_INET;
  addrinfo* result = nullptr;
  if (::getaddrinfo(host, nullptr, &hints, &result) != 0 || !result) {
    diags.error(master_file, {}, Code::Host, std::string("cannot resolve host name ") + host);
    return;
  }
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(result->ai_addr)->sin_addr, text,
              sizeof text);
  ::freeaddrinfo(result);
  std::printf("IPAddr is %s\n", text);
}

// The host fact of the audit's host-account warning: the passwd entry of a uid.
AuditHostFacts read_host_facts() {
  AuditHostFacts facts;
  facts.account_name = [](std::uint32_t uid) -> std::optional<std::string> {
    passwd entry{}, *found = nullptr;
    std::vector<char> buffer(16384);
    if (::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) != 0 || !found)
      return std::nullopt;
    return std::string(found->pw_name);
  };
  return facts;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Checks lithos configuration files and reports every problem found."};
  lithos::tools::set_version(app, "lithos_check");
  std::string master_path = "/etc/lithos/master.yaml";
  bool verbose = false, print_effective = false, audit = false, offline = false, strict = false;
  std::optional<std::string> host_root;
  std::optional<std::string> alternate, sandbox_name;
  std::vector<std::string> containers;
  std::string format = "text";
  app.add_option("-C,--config", master_path, "Master config")->capture_default_str();
  app.add_flag("-v,--verbose", verbose, "Print the host name and address");
  app.add_option("--alternate-config", alternate,
                 "Use FILE as the process config of the sandbox given with --sandbox");
  app.add_option("-T,--sandbox,--sandbox-name,--tree,--subtree-name", sandbox_name,
                 "Sandbox for --alternate-config");
  app.add_option("--check-container", containers,
                 "Check only these container config files (repeatable)")
      ->allow_extra_args(false);
  std::optional<std::string> srcroot;
  app.add_option("--format", format, "Output format: text, json, sarif, github or gitlab")
      ->check(CLI::IsMember({"text", "json", "sarif", "github", "gitlab"}))
      ->capture_default_str();
  app.add_option("--srcroot", srcroot,
                 "With sarif, github or gitlab: report paths relative to DIR (default: the "
                 "current directory)");
  app.add_flag("--print-effective", print_effective,
               "Print the canonical, fully defaulted form of every config checked");
  app.add_flag("--audit", audit,
               "Print what each process instance may do (privileges, paths, limits; "
               "docs/lithos_check.md, Audit) on stdout, as text or JSON");
  app.add_option("--root", host_root,
                 "Look for every absolute host path of the configs under DIR (a config "
                 "repository; docs/lithos_check.md, Config repositories)");
  app.add_flag("--offline", offline,
               "What needs the host or an absent image (devfs, images, volume sources, host "
               "files, binaries, cgroups) is a note, not an error");
  app.add_flag("--strict", strict, "Warnings fail the check too (exit 1)");
  if (auto exit_code = lithos::tools::parse_command_line(app, argc, argv)) return *exit_code;
  auto usage = [](const std::string& why) {
    return lithos::tools::usage_error("lithos_check", why);
  };
  if (host_root) {
    struct stat st {};
    if (host_root->empty() || ::stat(host_root->c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return usage("--root " + *host_root + ": not a directory");
    }
    if (!containers.empty()) {
      return usage(
          "--root applies to a tree's host paths; --check-container reads only the files given");
    }
  }
  if (audit && !containers.empty()) {
    return usage("--audit needs the whole tree; it cannot be used with --check-container");
  }
  const ReportFormat report_format = report_format_from_name(format).value_or(ReportFormat::Text);
  if (audit && uses_srcroot(report_format)) {
    return usage("--audit prints text or json, not " + format);
  }
  // The CI formats report paths relative to a source root (the cwd by default).
  ReportPaths report_paths;
  {
    std::error_code ec;
    auto here = std::filesystem::current_path(ec);
    report_paths.cwd = ec ? std::string("/") : here.string();
  }
  if (srcroot) {
    if (!uses_srcroot(report_format)) {
      return usage("--srcroot applies to --format sarif, github or gitlab, not " + format);
    }
    struct stat st {};
    if (srcroot->empty() || ::stat(srcroot->c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return usage("--srcroot " + *srcroot + ": not an existing directory");
    }
    report_paths.srcroot = absolute_normal(*srcroot, report_paths.cwd);
  }

  Diagnostics diags;
  Sources sources;
  std::string effective;
  std::vector<InstancePlan> plans;

  if (!containers.empty()) {
    for (const auto& file : containers) {
      auto doc = load_config<ContainerCodec>(file, diags, &sources);
      if (!doc) continue;
      check_container_alone(*doc, diags);
      if (print_effective) effective += "# " + file + "\n" + print<ContainerCodec>(doc->value);
    }
  } else {
    if (alternate && !sandbox_name) {
      return usage("Please specify --sandbox if you use --alternate-config");
    }
    std::string dir = own_dir();
    for (const char* sibling : {"lithos_tree", "lithos_knot"}) {
      if (is_regular_file(dir + "/" + sibling)) continue;
      std::string message = std::string(sibling) + " is not installed beside lithos_check";
      if (offline)
        diags.note(dir, {}, Code::Binaries, std::move(message));
      else
        diags.warning(dir, {}, Code::Binaries, std::move(message));
    }
    LoadOptions load;
    if (host_root) load.host_root = *host_root;
    load.alternate_sandbox = sandbox_name;
    load.alternate_file = alternate;
    ConfigTree tree = load_tree(master_path, load, diags, &sources);
    if (tree.master && verbose) print_host_info(diags, master_path);
    if (alternate) {
      bool used = std::any_of(tree.sandboxes.begin(), tree.sandboxes.end(),
                              [](const SandboxSource& s) { return s.alternate; });
      if (!used && tree.master)
        diags.error(tree.sandboxes_dir(), {}, Code::Sandbox,
                    "sandbox \"" + *sandbox_name + "\" is not used: there is no " +
                        join_path(tree.sandboxes_dir(), *sandbox_name + ".yaml") +
                        " (or it failed to load)");
    }
    std::map<std::string, ContainerConfig> seen;
    CheckOptions options;
    options.effective_containers = &seen;
    options.inspect_images = true;  // what passes is what the knot starts
    if (host_root) options.host_root = *host_root;
    options.offline = offline;
    // Facts of the machine lithos_check runs on: offline, that is not the host.
    if (!offline)
      options.cgroup_refusal = [](const lithos::policy::CgroupPlan& plan) {
        return lithos::runtime::cgroup_refusal(plan);
      };
    // A host fact: no process here can have more descriptors than fs.nr_open.
    if (std::ifstream nr_open("/proc/sys/fs/nr_open"); !offline && nr_open) {
      std::uint64_t most = 0;
      if (nr_open >> most && most > 0) {
        options.max_fileno_limit = most;
        options.max_fileno_limit_reason = "fs.nr_open";
      }
    }
    check_tree(tree, options, diags, &sources, audit ? &plans : nullptr);
    if (print_effective) {
      if (tree.master)
        effective += "# " + tree.master_path + "\n" + print<MasterCodec>(tree.master->value);
      for (const auto& s : tree.sandboxes) {
        if (s.config) effective += "# " + s.file + "\n" + print<SandboxCodec>(s.config->value);
        if (s.processes)
          effective += "# " + s.process_file + "\n" + print<ProcessConfigCodec>(s.processes->value);
      }
      for (const auto& [file, value] : seen)
        effective += "# " + file + "\n" + print<ContainerCodec>(value);
    }
  }

  // One order for every format: by file, line, column, code, message; exact
  // duplicates (a file reached twice) once.
  diags = diags.sorted_unique();
  const bool failed = diags.has_errors() || (strict && diags.warning_count() > 0);
  if (audit && report_format == ReportFormat::Json) {
    // One JSON document on stdout: the diagnostics go inside the audit.
    std::cout << format_audit_json(build_audit(plans, read_host_facts()), &diags);
  } else if (report_format == ReportFormat::Json) {
    std::cout << format_json(diags, LITHOS_VERSION);
  } else if (report_format == ReportFormat::Sarif) {
    SarifOptions sarif;
    sarif.tool_version = LITHOS_VERSION;
    sarif.exit_code = failed ? 1 : 0;
    // Rules' helpUri: docs/diagnostics.md where `cmake --install` puts it
    // (PREFIX/share/doc/lithos beside PREFIX/bin), else in the source tree
    // of a build directory at its root (scripts/build.sh DIR).
    std::string dir = own_dir();
    std::string installed = absolute_normal(dir + "/../share/doc/lithos/diagnostics.md", "/");
    std::string in_tree = absolute_normal(dir + "/../../docs/diagnostics.md", "/");
    sarif.help_uri =
        file_uri(is_regular_file(installed) || !is_regular_file(in_tree) ? installed : in_tree);
    std::cout << format_sarif(diags, report_paths, sarif);
  } else if (report_format == ReportFormat::Github) {
    std::cout << format_github(diags, report_paths);
  } else if (report_format == ReportFormat::Gitlab) {
    std::cout << format_gitlab(diags, report_paths);
  } else {
    std::cerr << format_text(diags, sources, lithos::tools::colour_wanted(STDERR_FILENO));
    std::size_t errors = diags.error_count();
    std::size_t warnings = diags.warning_count();
    std::size_t notes = diags.size() - errors - warnings;
    if (errors || warnings || notes)
      std::cerr << "lithos_check: " << errors << " error(s), " << warnings << " warning(s)"
                << (notes ? ", " + std::to_string(notes) + " note(s)" : std::string()) << "\n";
  }
  if (print_effective && format == "text" && !diags.has_errors()) std::cout << effective;
  if (audit && format == "text")
    std::cout << format_audit_text(build_audit(plans, read_host_facts()));
  return failed ? 1 : 0;
}

#include "lithos/policy/invocation.hpp"

#include <algorithm>

#include <charconv>

#include "lithos/policy/names.hpp"

namespace lithos::policy {

namespace {

std::optional<std::uint64_t> decimal(std::string_view text) {
  if (text.empty() || (text.size() > 1 && text[0] == '0')) return std::nullopt;
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value >= (1ULL << 63))
    return std::nullopt;
  return value;
}

}  // namespace

std::optional<InstanceName> InstanceName::parse(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  InstanceName out;
  out.sandbox = std::string(text.substr(0, slash));
  auto rest = text.substr(slash + 1);
  auto dot = rest.rfind('.');
  if (dot == std::string_view::npos) return std::nullopt;
  auto number = decimal(rest.substr(dot + 1));
  if (!number) return std::nullopt;
  out.number = *number;
  rest = rest.substr(0, dot);
  if (rest.substr(0, 4) == "cmd.") {
    out.command = true;
    rest.remove_prefix(4);
  }
  out.child = std::string(rest);
  if (!names::valid_name(out.sandbox) || !names::valid_name(out.child)) return std::nullopt;
  return out;
}

std::string InstanceName::format() const {
  return sandbox + (command ? "/cmd." : "/") + child + "." + std::to_string(number);
}

std::string scope_name(std::string_view instance_name) {
  std::string scope(instance_name);
  std::replace(scope.begin(), scope.end(), '/', ':');
  return scope + ".scope";
}

std::optional<std::string> instance_of_scope(std::string_view scope) {
  constexpr std::string_view kSuffix = ".scope";
  if (scope.size() <= kSuffix.size() || !scope.ends_with(kSuffix)) return std::nullopt;
  std::string name(scope.substr(0, scope.size() - kSuffix.size()));
  auto colon = name.find(':');
  if (colon == std::string::npos) return std::nullopt;
  name[colon] = '/';
  return name;
}

std::optional<KnotInvocation> KnotInvocation::parse(const std::vector<std::string>& argv,
                                                    std::string* error) {
  auto fail = [&](std::string why) -> std::optional<KnotInvocation> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  KnotInvocation out;
  bool have_name = false, have_config = false;
  std::size_t i = 1;
  for (; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    // --opt VALUE or --opt=VALUE
    auto value = [&](std::string_view opt) -> std::optional<std::string> {
      if (arg == opt) {
        if (i + 1 >= argv.size()) return std::nullopt;
        return argv[++i];
      }
      return arg.substr(opt.size() + 1);
    };
    auto is = [&](std::string_view opt) {
      return arg == opt || (arg.size() > opt.size() && arg.compare(0, opt.size(), opt) == 0 &&
                            arg[opt.size()] == '=');
    };
    if (is("--name")) {
      auto v = value("--name");
      if (!v) return fail("option --name needs a value");
      auto name = InstanceName::parse(*v);
      if (!name) return fail("Bad value \"" + *v + "\" for --name: expected SANDBOX/PROCESS.N");
      out.name = *name;
      have_name = true;
    } else if (is("--master")) {
      auto v = value("--master");
      if (!v) return fail("option --master needs a value");
      out.master = *v;
    } else if (is("--config")) {
      auto v = value("--config");
      if (!v) return fail("option --config needs a value");
      out.identity = *v;
      have_config = true;
    } else if (is("--log-level")) {
      auto v = value("--log-level");
      if (!v) return fail("option --log-level needs a value");
      out.log_level = *v;
    } else if (arg == "--log-stderr") {
      out.log_stderr = true;
    } else if (arg.size() > 1 && arg[0] == '-') {
      return fail("Unknown option " + arg);
    } else {
      break;  // the first positional
    }
  }
  for (; i < argv.size(); ++i) out.extra.push_back(argv[i]);
  if (!have_name) return fail("--name is required");
  if (!have_config) return fail("--config is required");
  return out;
}

std::vector<std::string> KnotInvocation::format(const std::string& program) const {
  std::vector<std::string> argv = {program, "--name",   name.format(), "--master",
                                   master,  "--config", identity};
  if (log_stderr) argv.push_back("--log-stderr");
  if (log_level) argv.push_back("--log-level=" + *log_level);
  if (!extra.empty()) {
    argv.push_back("--");
    argv.insert(argv.end(), extra.begin(), extra.end());
  }
  return argv;
}

}  // namespace lithos::policy

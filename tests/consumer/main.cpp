// lithos_consumer MASTER_YAML: checks the config tree of a master config with
// the installed policy library and prints one line per instance plan:
//   plan NAME executable EXECUTABLE
// Findings go to stderr; the exit status is 1 when there is an error.
#include <cstdio>
#include <string>
#include <vector>

#include <lithos/policy/check.hpp>
#include <lithos/policy/diagnostics.hpp>
#include <lithos/policy/plan.hpp>
#include <lithos/policy/tree.hpp>

int main(int argc, char** argv) {
  using namespace lithos::policy;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s MASTER_YAML\n", argv[0]);
    return 2;
  }
  Diagnostics diags;
  ConfigTree tree = load_tree(argv[1], LoadOptions{}, diags, nullptr);
  std::vector<InstancePlan> plans;
  check_tree(tree, CheckOptions{}, diags, nullptr, &plans);
  for (const auto& d : diags.items())
    std::fprintf(stderr, "%s:%d:%d: %s: %s\n", d.file.c_str(), d.mark.line, d.mark.column,
                 std::string(severity_name(d.severity)).c_str(), d.message.c_str());
  for (const auto& plan : plans)
    std::printf("plan %s executable %s\n", plan.name.c_str(), plan.executable.c_str());
  return diags.has_errors() ? 1 : 0;
}

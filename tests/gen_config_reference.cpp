// Prints the config key reference generated from the field tables
// (lithos/policy/reference.hpp), committed as docs/config-reference.md.
// Not installed.
//   gen_config_reference              print it
//   gen_config_reference --output F   write it to F
//   gen_config_reference --check F    exit 1 when F is not what it would write
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>

#include "lithos/policy/reference.hpp"

int main(int argc, char** argv) {
  const std::string text = lithos::policy::reference::markdown();
  const std::string_view mode = argc == 3 ? argv[1] : "";
  if (argc == 1) {
    std::cout << text;
    return 0;
  }
  if (mode == "--output") {
    std::ofstream out(argv[2], std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) {
      std::cerr << "gen_config_reference: cannot write " << argv[2] << "\n";
      return 1;
    }
    return 0;
  }
  if (mode == "--check") {
    std::ifstream in(argv[2], std::ios::binary);
    const std::string committed{std::istreambuf_iterator<char>(in), {}};
    if (committed == text) return 0;
    // The first line that differs, so that the failure says where.
    std::istringstream a(committed), b(text);
    std::string la, lb;
    int line = 1;
    while (true) {
      const bool more_a = static_cast<bool>(std::getline(a, la));
      const bool more_b = static_cast<bool>(std::getline(b, lb));
      if (!more_a && !more_b) break;
      if (!more_a || !more_b || la != lb) {
        std::cerr << argv[2] << ":" << line << ": differs from the field tables\n"
                  << "  committed: " << (more_a ? la : "(end of file)") << "\n"
                  << "  generated: " << (more_b ? lb : "(end of file)") << "\n";
        break;
      }
      ++line;
    }
    std::cerr << "Regenerate it: " << lithos::policy::reference::kRegenerate << "\n";
    return 1;
  }
  std::cerr << "usage: gen_config_reference [--output FILE | --check FILE]\n";
  return 2;
}

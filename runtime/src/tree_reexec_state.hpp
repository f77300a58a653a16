// What one image of the tree hands the next across a reload's re-exec
// (docs/tree.md, "Reload: in-place re-exec"), and its text form: one codec, used by the image
// that writes it (Tree::reexec) and the one that reads it back.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lithos::runtime::tree_detail {

struct ReexecState {
  std::uint32_t reload_token = 0;              // the reload the new image answers; 0: none
  std::map<std::string, std::int64_t> starts;  // instance -> last start (CLOCK_MONOTONIC ns)
  bool children_only = false;  // the old image tracked no other process: list children only
  std::map<pid_t, std::int64_t> kills;  // pid -> SIGKILL deadline (CLOCK_MONOTONIC ns)
  // pid -> (name, identity) of the old image's knots, adopted without
  // reading their command lines; identity "-": being stopped.
  std::map<pid_t, std::pair<std::string, std::string>> knots;
  // When the old image began the reload and when it called execve
  // (CLOCK_MONOTONIC ns): the new image's "started" line times both.
  std::optional<std::pair<std::int64_t, std::int64_t>> reload_times;
  friend bool operator==(const ReexecState&, const ReexecState&) = default;
};

// "v1\n", then one line each: `reload TOKEN`, `timing NS NS`, `start NAME NS`, `scan
// children`, and per pid in ascending order `kill PID NS` and `knot PID NAME
// IDENTITY`. A running old image execs the new binary with these bytes: the
// format cannot change.
//
// Not every state survives the text, and decoding is lenient (unknown or
// malformed lines are skipped, the later of two same keys wins):
//  * names are whitespace-delimited: a name with whitespace (or an empty one)
//    does not decode as written. Instance names cannot hold any; Tree::reexec
//    leaves out a knot whose name holds a space;
//  * the identity runs to the end of the line: it must be non-empty and hold
//    no newline (Tree::reexec leaves such a knot out: the new image reads
//    its command line instead);
//  * a knot's pid must be positive, else the line is dropped.
std::string encode_reexec_state(const ReexecState& state);
ReexecState decode_reexec_state(std::string_view text);

// The way back a reload hands the new image (docs/tree.md, "Going back"):
// kPreviousImageEnv's value "FD HEX", FD an O_PATH descriptor of the running
// executable, HEX its command line (each argument followed by a NUL, in
// lower-case hex). Any bytes round-trip; decoding refuses a negative or
// missing descriptor or one with a leading zero, odd or non-hex digits, a missing final NUL and an
// empty command line.
struct WayBackText {
  int exe_fd = -1;
  std::vector<std::string> argv;
  friend bool operator==(const WayBackText&, const WayBackText&) = default;
};
std::string encode_way_back(const WayBackText& way_back);
std::optional<WayBackText> decode_way_back(std::string_view text);

}  // namespace lithos::runtime::tree_detail

// Properties of the state one tree image hands the next across a reload's
// re-exec (runtime/src/tree_reexec_state.hpp):
//  * decode(encode(x)) == x for names without whitespace, identities without
//    a newline and positive knot pids (what the writer puts in: the rest is
//    left out by Tree::reexec, see the header);
//  * the bytes are those an older image writes and a newer one reads: a
//    fixed state encodes to the fixed text;
//  * arbitrary bytes never crash the decoder (run under the sanitizers).
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cctype>

#include "../runtime/src/tree_reexec_state.hpp"

namespace {

using lithos::runtime::tree_detail::decode_reexec_state;
using lithos::runtime::tree_detail::decode_way_back;
using lithos::runtime::tree_detail::encode_reexec_state;
using lithos::runtime::tree_detail::encode_way_back;
using lithos::runtime::tree_detail::ReexecState;
using lithos::runtime::tree_detail::WayBackText;

bool is_space(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

// Instance names: no whitespace, never empty; digits and separators included.
rc::Gen<std::string> name() {
  auto character = rc::gen::oneOf(
      rc::gen::suchThat(rc::gen::character<char>(), [](char c) { return !is_space(c); }),
      rc::gen::element('/', '.', '-', '1', '\0'));
  return rc::gen::nonEmpty(rc::gen::container<std::string>(character));
}

// Identities: anything but a newline (spaces included, leading ones too).
rc::Gen<std::string> identity() {
  auto character = rc::gen::oneOf(
      rc::gen::suchThat(rc::gen::character<char>(), [](char c) { return c != '\n'; }),
      rc::gen::element(' ', '-', '\r', '\t'));
  return rc::gen::nonEmpty(rc::gen::container<std::string>(character));
}

rc::Gen<ReexecState> state() {
  return rc::gen::apply(
      [](std::uint32_t token, std::map<std::string, std::int64_t> starts, bool children_only,
         std::map<pid_t, std::int64_t> kills,
         std::map<pid_t, std::pair<std::string, std::string>> knots,
         rc::Maybe<std::pair<std::int64_t, std::int64_t>> reload_times) {
        ReexecState s;
        if (reload_times) s.reload_times = *reload_times;
        s.reload_token = token;
        s.starts = std::move(starts);
        s.children_only = children_only;
        s.kills = std::move(kills);
        s.knots = std::move(knots);
        return s;
      },
      rc::gen::oneOf(rc::gen::just<std::uint32_t>(0), rc::gen::arbitrary<std::uint32_t>()),
      rc::gen::container<std::map<std::string, std::int64_t>>(name(),
                                                              rc::gen::arbitrary<std::int64_t>()),
      rc::gen::arbitrary<bool>(),
      rc::gen::container<std::map<pid_t, std::int64_t>>(rc::gen::arbitrary<pid_t>(),
                                                        rc::gen::arbitrary<std::int64_t>()),
      rc::gen::container<std::map<pid_t, std::pair<std::string, std::string>>>(
          rc::gen::positive<pid_t>(), rc::gen::pair(name(), identity())),
      rc::gen::maybe(
          rc::gen::pair(rc::gen::arbitrary<std::int64_t>(), rc::gen::arbitrary<std::int64_t>())));
}

RC_GTEST_PROP(TreeReexecState, RoundTrips, ()) {
  auto x = *state();
  RC_ASSERT(decode_reexec_state(encode_reexec_state(x)) == x);
}

RC_GTEST_PROP(TreeReexecState, ArbitraryBytesNeverCrash, ()) {
  auto bytes = *rc::gen::oneOf(
      rc::gen::string<std::string>(),
      rc::gen::container<std::string>(rc::gen::element('\n', ' ', '-', '1', 'k', 'n', 'o', 't')));
  (void)decode_reexec_state(bytes);
}

// The text a running tree writes today (the order of its lines included):
// the new image must read exactly this.
TEST(TreeReexecState, BytesAreFixed) {
  ReexecState s;
  s.reload_token = 7;
  s.starts = {{"a/b.0", 12}, {"a/c.1", -3}};
  s.children_only = true;
  s.kills = {{10, 500}, {30, 600}};
  s.knots = {{10, {"a/b.0", "-"}}, {20, {"a/c.1", "id with spaces"}}};
  s.reload_times = {{100, 250}};
  const std::string text =
      "v1\nreload 7\ntiming 100 250\nstart a/b.0 12\nstart a/c.1 -3\nscan children\n"
      "kill 10 500\nknot 10 a/b.0 -\nknot 20 a/c.1 id with spaces\nkill 30 600\n";
  EXPECT_EQ(encode_reexec_state(s), text);
  EXPECT_EQ(decode_reexec_state(text), s);
  EXPECT_EQ(encode_reexec_state(ReexecState{}), "v1\n");
}

// What does not survive the text, as the header says: kept lenient so that
// an old image's state never stops a new one.
TEST(TreeReexecState, LenientDecoding) {
  EXPECT_EQ(decode_reexec_state(""), ReexecState{});
  auto s = decode_reexec_state("v1\nknot 0 a/b.0 x\nknot 5 a/b.0 \nbogus\nstart a\n");
  EXPECT_EQ(s, ReexecState{});
}

// The way back a reload hands the new image: any command line (NULs
// aside, which a command line cannot hold) and descriptor survive.
RC_GTEST_PROP(WayBack, DecodeEncodeIsIdentity, ()) {
  WayBackText way_back;
  way_back.exe_fd = *rc::gen::inRange(0, 1 << 20);
  way_back.argv = *rc::gen::nonEmpty(
      rc::gen::container<std::vector<std::string>>(rc::gen::container<std::string>(
          rc::gen::suchThat(rc::gen::character<char>(), [](char c) { return c != '\0'; }))));
  RC_ASSERT(decode_way_back(encode_way_back(way_back)) == std::optional<WayBackText>(way_back));
}

// Whatever decodes re-encodes to the same text: one spelling per way back.
RC_GTEST_PROP(WayBack, OnlyCanonicalTextDecodes, (const std::string& text)) {
  if (auto decoded = decode_way_back(text)) RC_ASSERT(encode_way_back(*decoded) == text);
}

TEST(WayBack, MalformedTextIsRefused) {
  EXPECT_EQ(encode_way_back({5, {"lithos_tree", "-C"}}), "5 6c6974686f735f74726565002d4300");
  for (const char* text : {"", "5", "5 ", " 6100", "-5 6100", "5 610", "5 6a", "5 6A00", "5 zz00",
                           "x 6100", "05 6100", "1234567890 6100"})
    EXPECT_EQ(decode_way_back(text), std::nullopt) << text;
}

}  // namespace

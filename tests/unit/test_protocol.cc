#include <catch2/catch.hpp>

#include "daemon/protocol/jsonrpc.h"

namespace relsupd::rpc {
namespace {

TEST_CASE("LineBuffer splits lines and survives partial input") {
  LineBuffer b(100);
  std::string line;
  b.Append("{\"a\":1}\n{\"b\"");
  CHECK(b.Pop(&line) == LineBuffer::Next::kLine);
  CHECK(line == "{\"a\":1}");
  CHECK(b.Pop(&line) == LineBuffer::Next::kNeedMore);
  b.Append(":2}\r\n");
  CHECK(b.Pop(&line) == LineBuffer::Next::kLine);
  CHECK(line == "{\"b\":2}");
  CHECK(b.buffered() == 0);
}

TEST_CASE("LineBuffer refuses a line over its limit, with or without newline") {
  LineBuffer b(8);
  std::string line;
  b.Append("0123456789");
  CHECK(b.Pop(&line) == LineBuffer::Next::kTooLong);
  LineBuffer c(8);
  c.Append("0123456789\n");
  CHECK(c.Pop(&line) == LineBuffer::Next::kTooLong);
  LineBuffer d(8);
  d.Append("01234567\n");
  CHECK(d.Pop(&line) == LineBuffer::Next::kLine);
}

TEST_CASE("messages frame as one line and errors map both ways") {
  std::string f = Frame(MakeRequest(1, "daemon.info", Json::object()));
  CHECK(f.back() == '\n');
  CHECK(f.find('\n') == f.size() - 1);
  auto j = Json::parse(f);
  CHECK(j["jsonrpc"] == "2.0");
  CHECK(j["method"] == "daemon.info");
  // Invalid UTF-8 is replaced, not thrown.
  CHECK_NOTHROW(Frame(MakeResult(1, std::string("\xff\xfe"))));
  CHECK(CodeForStatus(NotFound("x")) == kNotFound);
  CHECK(CodeForStatus(InvalidArgument("x")) == kInvalidParams);
  CHECK(CodeForStatus(PermissionDenied("x")) == kPermissionDenied);
  Status s = StatusFromError({{"code", kPermissionDenied}, {"message", "no"}});
  CHECK(s.code() == StatusCode::kPermissionDenied);
  CHECK(s.message() == "no");
  CHECK(StatusFromError(Json("junk")).code() == StatusCode::kFailedPrecondition);
}

std::string Nested(size_t levels, std::string_view inner = "1") {
  return std::string(levels, '[') + std::string(inner) + std::string(levels, ']');
}

TEST_CASE("the depth scan allows kMaxDepth levels and refuses one more") {
  CHECK(CheckDepth(Nested(kMaxDepth)).ok());
  CHECK(CheckDepth(R"({"a":{"b":[{"c":[]}]}})").ok());
  Status s = CheckDepth(Nested(kMaxDepth + 1));
  REQUIRE(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message().find("deeper than 64 levels") != std::string::npos);
  CHECK(s.message().find("at byte 64") != std::string::npos);
  // Objects count as arrays do.
  std::string objects;
  for (size_t i = 0; i <= kMaxDepth; ++i) objects += "{\"a\":";
  CHECK_FALSE(CheckDepth(objects + "1" + std::string(kMaxDepth + 1, '}')).ok());
}

TEST_CASE("the depth scan skips strings, escapes included, and is not fooled by closers") {
  // Brackets in strings are text, not nesting.
  CHECK(CheckDepth("[\"" + std::string(1000, '[') + "\"]").ok());
  // An escaped quote does not end the string...
  CHECK(CheckDepth("[\"\\\"" + std::string(1000, '[') + "\"]").ok());
  // ...but an escaped backslash before it does, and the brackets count.
  CHECK_FALSE(CheckDepth("[\"\\\\\"" + std::string(100, '[')).ok());
  // Surplus closers give no credit for later openers.
  CHECK_FALSE(CheckDepth(std::string(1000, ']') + Nested(kMaxDepth + 1)).ok());
  // Depth is per path, not a total: many siblings are fine.
  std::string siblings = "[";
  for (int i = 0; i < 10000; ++i) siblings += (i ? ",[[]]" : "[[]]");
  CHECK(CheckDepth(siblings + "]").ok());
}

TEST_CASE("ParseMessage refuses 300,000 levels before parsing, without a crash") {
  // The crash at 3c36d97: this id overflowed the stack when copied.
  std::string line = R"({"jsonrpc":"2.0","method":"daemon.info","id":)" +
                     Nested(300'000, "") + "}";
  auto r = ParseMessage(line);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("64 levels") != std::string::npos);
  auto ok = ParseMessage(R"({"jsonrpc":"2.0","id":1,"method":"x"})");
  REQUIRE(ok.ok());
  CHECK((*ok)["id"] == 1);
  CHECK_FALSE(ParseMessage("{not json").ok());
  CHECK(CodeForStatus(InvalidArgument("x")) == kInvalidParams);
  CHECK(StatusFromError({{"code", kReplyTooLarge}, {"message", "m"}}).code() ==
        StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace relsupd::rpc

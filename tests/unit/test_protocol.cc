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

}  // namespace
}  // namespace relsupd::rpc

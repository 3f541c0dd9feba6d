#include <catch2/catch.hpp>
#include <unistd.h>

#include "daemon/control/dispatcher.h"
#include "daemon/control/peer.h"

namespace relsupd {
namespace {

using rpc::Json;

struct Fixture {
  AccessPolicy policy;
  Dispatcher d{&policy};
  Peer admin, reader, stranger;
  int calls = 0;
  Fixture() {
    policy.daemon_uid = 0;
    policy.admin_group = "relsupd-admin";
    policy.socket_group = "relsupd";
    admin.right = Right::kChange;
    reader.right = Right::kRead;
    reader.uid = 65534;
    reader.name = "nobody";
    d.Register("echo", Right::kRead, [this](const Request& r) -> Result<Json> {
      ++calls;
      return r.params;
    });
    d.Register("change", Right::kChange, [this](const Request&) -> Result<Json> {
      ++calls;
      return Json("changed");
    });
    d.Register("fail", Right::kRead, [](const Request&) -> Result<Json> {
      return NotFound("app 'x' does not exist");
    });
    d.Register("throw", Right::kRead, [](const Request&) -> Result<Json> {
      throw std::runtime_error("boom");
    });
  }
  Json Call(const std::string& line, const Peer& p) {
    std::string out = d.HandleLine(line, p);
    if (out.empty()) return nullptr;
    REQUIRE(out.back() == '\n');
    return Json::parse(out);
  }
};

TEST_CASE("dispatcher answers requests and standard errors") {
  Fixture f;
  auto r = f.Call(R"({"jsonrpc":"2.0","id":7,"method":"echo","params":{"a":1}})", f.admin);
  CHECK(r["id"] == 7);
  CHECK(r["result"]["a"] == 1);
  CHECK(f.Call(R"({"jsonrpc":"2.0","id":"x","method":"echo"})", f.admin)["result"] ==
        Json::object());

  auto parse = f.Call("{not json", f.admin);
  CHECK(parse["error"]["code"] == rpc::kParseError);
  CHECK(parse["id"].is_null());
  CHECK(f.Call(R"({"jsonrpc":"2.0","id":1,"method":"nope"})", f.admin)["error"]["code"] ==
        rpc::kMethodNotFound);
  CHECK(f.Call(R"({"jsonrpc":"1.0","id":1,"method":"echo"})", f.admin)["error"]["code"] ==
        rpc::kInvalidRequest);
  CHECK(f.Call(R"({"jsonrpc":"2.0","id":1,"method":5})", f.admin)["error"]["code"] ==
        rpc::kInvalidRequest);
  CHECK(f.Call(R"({"jsonrpc":"2.0","id":{},"method":"echo"})", f.admin)["error"]["code"] ==
        rpc::kInvalidRequest);
  CHECK(f.Call(R"({"jsonrpc":"2.0","id":1,"method":"echo","params":3})", f.admin)["error"]["code"] ==
        rpc::kInvalidRequest);
  CHECK(f.Call(R"({"jsonrpc":"2.0","id":1,"method":"echo","params":[1]})", f.admin)["error"]["code"] ==
        rpc::kInvalidParams);
  CHECK(f.Call("42", f.admin)["error"]["code"] == rpc::kInvalidRequest);
  auto fail = f.Call(R"({"jsonrpc":"2.0","id":1,"method":"fail"})", f.admin);
  CHECK(fail["error"]["code"] == rpc::kNotFound);
  CHECK(fail["error"]["message"] == "app 'x' does not exist");
  auto thrown = f.Call(R"({"jsonrpc":"2.0","id":1,"method":"throw"})", f.admin);
  CHECK(thrown["error"]["code"] == rpc::kInternalError);
}

TEST_CASE("notifications run but get no response") {
  Fixture f;
  CHECK(f.Call(R"({"jsonrpc":"2.0","method":"echo"})", f.admin).is_null());
  CHECK(f.calls == 1);
  CHECK(f.Call(R"({"jsonrpc":"2.0","method":"nope"})", f.admin).is_null());
  // A null id is a request, not a notification.
  CHECK(f.Call(R"({"jsonrpc":"2.0","id":null,"method":"echo"})", f.admin)["id"].is_null());
}

TEST_CASE("batches answer each request in an array") {
  Fixture f;
  auto r = f.Call(R"([{"jsonrpc":"2.0","id":1,"method":"echo"},
                      {"jsonrpc":"2.0","method":"echo"},
                      {"jsonrpc":"2.0","id":2,"method":"nope"},
                      7])",
                  f.admin);
  REQUIRE(r.is_array());
  REQUIRE(r.size() == 3);
  CHECK(r[0]["id"] == 1);
  CHECK(r[1]["id"] == 2);
  CHECK(r[1]["error"]["code"] == rpc::kMethodNotFound);
  CHECK(r[2]["error"]["code"] == rpc::kInvalidRequest);
  CHECK(f.Call(R"([{"jsonrpc":"2.0","method":"echo"}])", f.admin).is_null());
  auto empty = f.Call("[]", f.admin);
  CHECK(empty.is_object());
  CHECK(empty["error"]["code"] == rpc::kInvalidRequest);
  std::string big = "[";
  for (size_t i = 0; i <= Dispatcher::kMaxBatch; ++i)
    big += std::string(i ? "," : "") + R"({"jsonrpc":"2.0","method":"echo"})";
  big += "]";
  CHECK(f.Call(big, f.admin)["error"]["code"] == rpc::kInvalidRequest);
}

TEST_CASE("rights are checked before a handler runs") {
  Fixture f;
  auto r = f.Call(R"({"jsonrpc":"2.0","id":1,"method":"change"})", f.reader);
  CHECK(r["error"]["code"] == rpc::kPermissionDenied);
  std::string m = r["error"]["message"];
  CHECK(m.find("'change' needs the change right") != std::string::npos);
  CHECK(m.find("uid 65534 (nobody) has read right") != std::string::npos);
  CHECK(m.find("relsupd-admin") != std::string::npos);
  CHECK(f.calls == 0);
  CHECK(f.Call(R"({"jsonrpc":"2.0","id":1,"method":"echo"})", f.reader)["result"] ==
        Json::object());
  CHECK(f.Call(R"({"jsonrpc":"2.0","id":1,"method":"echo"})", f.stranger)["error"]["code"] ==
        rpc::kPermissionDenied);
  CHECK(f.Call(R"({"jsonrpc":"2.0","id":1,"method":"change"})", f.admin)["result"] ==
        "changed");
}

TEST_CASE("rights follow uid and group membership") {
  AccessPolicy policy;
  policy.daemon_uid = 4242;
  policy.admin_gid = 5000;
  policy.socket_gid = 5001;
  Peer p;
  p.uid = 0;
  CHECK(RightOf(p, policy) == Right::kChange);
  p.uid = 4242;
  CHECK(RightOf(p, policy) == Right::kChange);
  p.uid = 4243;  // no passwd entry: only the primary gid counts
  p.gid = 5001;
  CHECK(RightOf(p, policy) == Right::kRead);
  p.gid = 5000;
  CHECK(RightOf(p, policy) == Right::kChange);
  p.gid = 9999;
  CHECK(RightOf(p, policy) == Right::kNone);
  policy.admin_gid.reset();
  p.gid = 5000;
  CHECK(RightOf(p, policy) == Right::kNone);
}

}  // namespace
}  // namespace relsupd

namespace relsupd {
namespace {

TEST_CASE("async answers complete a batch in request order, once") {
  AccessPolicy policy;
  Dispatcher d(&policy);
  std::vector<Reply> pending;
  d.RegisterAsync("later", Right::kRead,
                  [&](const Request& r, Reply reply) {
                    pending.push_back([reply, v = r.params.value("v", 0)](
                                          Result<rpc::Json>) { reply(rpc::Json(v)); });
                  });
  Peer peer;
  peer.right = Right::kRead;
  std::deque<Fd> fds;
  int calls = 0;
  std::string out;
  d.HandleLine(R"([{"jsonrpc":"2.0","id":1,"method":"later","params":{"v":10}},
                   {"jsonrpc":"2.0","id":2,"method":"later","params":{"v":20}}])",
               peer, &fds, [&](std::string s) {
                 ++calls;
                 out = std::move(s);
               });
  REQUIRE(pending.size() == 2);
  CHECK(calls == 0);
  pending[1](rpc::Json());
  CHECK(calls == 0);
  pending[0](rpc::Json());
  REQUIRE(calls == 1);
  auto j = rpc::Json::parse(out);
  CHECK(j[0]["id"] == 1);
  CHECK(j[0]["result"] == 10);
  CHECK(j[1]["result"] == 20);

  // A notification answers with "" exactly once, so callers can count.
  calls = 0;
  pending.clear();
  d.HandleLine(R"({"jsonrpc":"2.0","method":"later"})", peer, &fds,
               [&](std::string s) {
                 ++calls;
                 CHECK(s.empty());
               });
  pending[0](rpc::Json());
  CHECK(calls == 1);
}

}  // namespace
}  // namespace relsupd

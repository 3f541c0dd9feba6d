#include <catch2/catch.hpp>
#include <unistd.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include "daemon/control/dispatcher.h"
#include "daemon/control/metrics.h"
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

#include <uv.h>

#include <chrono>
#include <thread>

#include "daemon/control/paging.h"
#include "daemon/control/read_jobs.h"

namespace relsupd {
namespace {

std::string Nested(size_t levels) {
  return std::string(levels, '[') + std::string(levels, ']');
}

TEST_CASE("too deep messages get an error naming the limit, anywhere in them") {
  Fixture f;
  // The crash at 3c36d97: a 300,000-level id, copied before its type check.
  auto deep_id = f.Call(R"({"jsonrpc":"2.0","method":"echo","id":)" +
                            Nested(300'000) + "}",
                        f.reader);
  CHECK(deep_id["error"]["code"] == rpc::kInvalidRequest);
  CHECK(deep_id["error"]["message"].get<std::string>().find("deeper than 64 levels") !=
        std::string::npos);
  CHECK(deep_id["id"].is_null());
  auto deep_params = f.Call(R"({"jsonrpc":"2.0","method":"echo","id":1,"params":{"a":)" +
                                Nested(100) + "}}",
                            f.reader);
  CHECK(deep_params["error"]["code"] == rpc::kInvalidRequest);
  auto deep_member = f.Call(R"([{"jsonrpc":"2.0","method":"echo","id":1},)"
                            R"({"jsonrpc":"2.0","method":"echo","id":2,"params":{"a":)" +
                                Nested(100) + "}}]",
                            f.reader);
  CHECK(deep_member["error"]["code"] == rpc::kInvalidRequest);
  CHECK(f.calls == 0);
  // 63 levels inside params (64 with the request object) pass.
  auto fine = f.Call(R"({"jsonrpc":"2.0","method":"echo","id":1,"params":{"a":)" +
                         Nested(62) + "}}",
                     f.reader);
  CHECK(fine["result"]["a"].is_array());
  // A shallow id of the wrong type is refused before anything copies it.
  auto object_id = f.Call(R"({"jsonrpc":"2.0","method":"echo","id":{"a":[1]}})", f.reader);
  CHECK(object_id["error"]["code"] == rpc::kInvalidRequest);
  CHECK(object_id["id"].is_null());
}

TEST_CASE("batches are bounded in count and their replies in bytes") {
  Fixture f;
  std::string batch = "[";
  for (size_t i = 0; i <= Dispatcher::kMaxBatch; ++i)
    batch += (i ? "," : "") + std::string(R"({"jsonrpc":"2.0","method":"echo","id":1})");
  auto too_many = f.Call(batch + "]", f.reader);
  CHECK(too_many["error"]["code"] == rpc::kInvalidRequest);
  CHECK(too_many["error"]["message"].get<std::string>().find("at most 100") !=
        std::string::npos);
  CHECK(f.calls == 0);

  // One reply over the budget becomes an error naming the limit.
  f.d.Register("big", Right::kRead, [](const Request& r) -> Result<Json> {
    return Json(std::string(r.params.value("kib", 1) << 10, 'x'));
  });
  auto big = f.Call(R"({"jsonrpc":"2.0","method":"big","id":9,"params":{"kib":2048}})", f.reader);
  CHECK(big["id"] == 9);
  CHECK(big["error"]["code"] == rpc::kReplyTooLarge);
  CHECK(big["error"]["message"].get<std::string>().find(std::to_string(rpc::kMaxReplyBytes)) !=
        std::string::npos);
  // A batch's replies together stay within it: the ones past it are errors.
  std::string five = "[";
  for (int i = 0; i < 5; ++i)
    five += (i ? "," : "") + std::string(R"({"jsonrpc":"2.0","method":"big","id":)") +
            std::to_string(i) + R"(,"params":{"kib":300}})";
  std::string out = f.d.HandleLine(five + "]", f.reader);
  CHECK(out.size() < rpc::kMaxReplyBytes + 4096);
  auto j = Json::parse(out);
  REQUIRE(j.size() == 5);
  CHECK(j[0]["result"].is_string());
  CHECK(j[2]["result"].is_string());
  CHECK(j[3]["error"]["code"] == rpc::kReplyTooLarge);
  CHECK(j[4]["error"]["code"] == rpc::kReplyTooLarge);
}

// A loop that runs the dispatcher from its idle handle, as the daemon does.
struct LoopFixture {
  uv_loop_t loop;
  AccessPolicy policy;
  Dispatcher d{&policy};
  Peer heavy, light;
  int slow_calls = 0;
  LoopFixture() {
    uv_loop_init(&loop);
    d.RunOnLoop(&loop);
    heavy.uid = 65534;
    heavy.pid = 100;
    heavy.right = Right::kRead;
    light.uid = 0;
    light.pid = 200;
    light.right = Right::kChange;
    d.Register("slow", Right::kRead, [this](const Request&) -> Result<Json> {
      ++slow_calls;
      // 1 ms of work, as a heavy read page might take.
      auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1);
      while (std::chrono::steady_clock::now() < until) {
      }
      return Json(true);
    });
    d.Register("echo", Right::kRead, [](const Request& r) -> Result<Json> { return r.params; });
  }
  ~LoopFixture() {
    d.Stop();
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(uv_loop_close(&loop) == 0);
  }
};

std::string SlowBatch(int n) {
  std::string b = "[";
  for (int i = 0; i < n; ++i)
    b += (i ? "," : "") + std::string(R"({"jsonrpc":"2.0","method":"slow","id":)") +
         std::to_string(i) + "}";
  return b + "]";
}

TEST_CASE("a peer's heavy batches delay another peer by a slice, not by the batches") {
  LoopFixture f;
  std::deque<Fd> fds;
  int heavy_done = 0;
  for (int i = 0; i < 3; ++i)
    f.d.HandleLine(SlowBatch(100), f.heavy, &fds, [&](std::string s) {
      CHECK(Json::parse(s).size() == 100);
      ++heavy_done;
    });
  std::string light_answer;
  int slow_before_light = -1;
  f.d.HandleLine(R"({"jsonrpc":"2.0","method":"echo","id":7,"params":{"x":1}})", f.light, &fds,
                 [&](std::string s) {
                   light_answer = std::move(s);
                   slow_before_light = f.slow_calls;
                 });
  CHECK(light_answer.empty());  // queued, not run inside HandleLine
  while (heavy_done < 3) uv_run(&f.loop, UV_RUN_ONCE);
  REQUIRE_FALSE(light_answer.empty());
  CHECK(Json::parse(light_answer)["result"]["x"] == 1);
  // Answered within the first slice or two, not after 300 ms of slow calls.
  CHECK(slow_before_light <= 10);
  CHECK(f.slow_calls == 300);
  CHECK_FALSE(f.d.HasWork());
}

TEST_CASE("a peer's queue is bounded, and past it requests get kBusy at once") {
  // What the daemon logs meanwhile: one warning when the refusals begin and
  // one with their count when the queue has drained, however many.
  std::ostringstream logged;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(logged);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", sink));
  struct Restore {
    std::shared_ptr<spdlog::logger> logger;
    ~Restore() { spdlog::set_default_logger(logger); }
  } restore{previous};
  LoopFixture f;
  std::deque<Fd> fds;
  int answered = 0;
  std::vector<std::string> busy;
  for (size_t i = 0; i < Dispatcher::kMaxQueuedLines + 1000; ++i)
    f.d.HandleLine(R"({"jsonrpc":"2.0","method":"slow","id":1})", f.heavy, &fds,
                   [&](std::string s) {
                     ++answered;
                     if (s.find("busy") != std::string::npos) busy.push_back(s);
                   });
  CHECK(busy.size() == 1000);
  CHECK(Json::parse(busy[0])["error"]["code"] == rpc::kBusy);
  // Another peer is not affected.
  std::string other;
  f.d.HandleLine(R"({"jsonrpc":"2.0","method":"echo","id":2})", f.light, &fds,
                 [&](std::string s) { other = std::move(s); });
  while (f.d.HasWork()) uv_run(&f.loop, UV_RUN_ONCE);
  CHECK(answered == static_cast<int>(Dispatcher::kMaxQueuedLines) + 1000);
  CHECK(Json::parse(other)["result"] == Json::object());
  const std::string log = logged.str();
  INFO(log);
  size_t warnings = 0;
  for (size_t at = log.find("Refused"); at != std::string::npos; at = log.find("Refused", at + 1))
    ++warnings;
  CHECK(warnings == 2);
  CHECK_THAT(log, Catch::Contains("Refused 1000 requests of uid"));
}

TEST_CASE("read jobs: one at a time, duplicates merged, bounded per uid and in all") {
  ReadJobs jobs;
  std::vector<Reply> started;
  auto start = [&](Reply done) { started.push_back(std::move(done)); };
  std::vector<Result<Json>> got;
  auto collect = [&](Result<Json> r) { got.push_back(std::move(r)); };
  jobs.Submit(65534, "verify shop 1", start, collect);
  jobs.Submit(65534, "verify shop 1", start, collect);  // joins the first
  jobs.Submit(1000, "verify shop 1", start, collect);   // another uid joins too
  jobs.Submit(65534, "verify shop 2", start, collect);  // waits its turn
  CHECK(started.size() == 1);
  CHECK(jobs.running() == 1);
  CHECK(jobs.waiting() == 1);
  // uid 65534 has 3 calls; a 5th is refused.
  jobs.Submit(65534, "verify shop 3", start, collect);
  jobs.Submit(65534, "verify shop 4", start, collect);
  REQUIRE(got.size() == 1);
  CHECK(got[0].status().code() == StatusCode::kBusy);
  CHECK(got[0].status().message().find("limit per uid") != std::string::npos);
  got.clear();
  // The one job's result goes to its three callers, then the next starts.
  started[0](Json{{"ok", true}});
  REQUIRE(got.size() == 3);
  for (const auto& r : got) CHECK((*r)["ok"] == true);
  CHECK(started.size() == 2);
  started[1](Json("2"));
  CHECK(started.size() == 3);
  started[2](Json("3"));
  CHECK(jobs.running() == 0);
  CHECK(jobs.waiting() == 0);
  // The global queue: distinct uids, distinct keys.
  got.clear();
  started.clear();
  for (uid_t u = 0; u < ReadJobLimits{}.waiting + 2; ++u)
    jobs.Submit(u, "k" + std::to_string(u), start, collect);
  REQUIRE(got.size() == 1);
  CHECK(got[0].status().code() == StatusCode::kBusy);
  CHECK(jobs.waiting() == ReadJobLimits{}.waiting);
}

TEST_CASE("capped lists keep the first entries and say some were left out") {
  std::vector<std::string> many(paging::kMaxListItems + 5, "a/b");
  bool truncated = false;
  CHECK(paging::CappedList({"x", "y"}, &truncated).size() == 2);
  CHECK_FALSE(truncated);
  CHECK(paging::CappedList(many, &truncated).size() == paging::kMaxListItems);
  CHECK(truncated);
  bool by_bytes = false;
  std::vector<std::string> long_paths(100, std::string(4000, 'p'));
  CHECK(paging::CappedList(long_paths, &by_bytes).size() < 100);
  CHECK(by_bytes);
}

}  // namespace
}  // namespace relsupd

namespace relsupd {
namespace {

TEST_CASE("a paused dispatcher starts no queued line until resumed") {
  LoopFixture f;
  std::vector<std::string> answers;
  f.d.Pause();
  std::deque<Fd> fds;
  f.d.HandleLine(R"({"jsonrpc":"2.0","method":"echo","params":{"n":1},"id":1})", f.light, &fds,
                 [&](std::string s) { answers.push_back(std::move(s)); });
  for (int i = 0; i < 5; ++i) uv_run(&f.loop, UV_RUN_NOWAIT);
  CHECK(answers.empty());
  CHECK(f.d.HasWork());
  f.d.Resume();
  for (int i = 0; i < 5 && answers.empty(); ++i) uv_run(&f.loop, UV_RUN_NOWAIT);
  REQUIRE(answers.size() == 1);
  CHECK(Json::parse(answers[0])["result"]["n"] == 1);
}

TEST_CASE("a handler sees the request's id and whether it came in a batch") {
  Fixture f;
  std::vector<std::pair<std::string, bool>> seen;
  f.d.Register("who", Right::kRead, [&](const Request& r) -> Result<Json> {
    seen.emplace_back(r.id.dump(), r.in_batch);
    return Json(true);
  });
  f.Call(R"({"jsonrpc":"2.0","method":"who","id":"a"})", f.admin);
  f.Call(R"([{"jsonrpc":"2.0","method":"who","id":7}])", f.admin);
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] == std::pair<std::string, bool>{"\"a\"", false});
  CHECK(seen[1] == std::pair<std::string, bool>{"7", true});
}

}  // namespace
}  // namespace relsupd

namespace relsupd {
namespace {

TEST_CASE("metrics text: HELP and TYPE per family, escaped label values, counts per state") {
  MetricsSnapshot m;
  m.version = "1.2.3";
  m.instances = {{.app = "shop", .type = "web", .process = "web.1", .state = "ready",
                  .restarts = 2, .exits = {{"health", 1}, {"exited", 1}}, .has_usage = true,
                  .memory_bytes = 1048576, .cpu_seconds = 1.25},
                 {.app = "shop", .type = "web", .process = "web.2", .state = "ready"},
                 {.app = "shop", .type = "web", .process = "web.3", .state = "backoff"}};
  m.active_release = {{"shop", "v3"}};
  m.requests = {{{"ps", "ok"}, 7}};
  m.log_lines = {{{"a\"b\\c\nd", "out"}, 4}};
  const std::string text = RenderMetrics(m);
  INFO(text);
  CHECK_THAT(text, Catch::StartsWith("# HELP relsupd_build_info "));
  CHECK_THAT(text, Catch::Contains("# TYPE relsupd_build_info gauge\n"
                                   "relsupd_build_info{version=\"1.2.3\"} 1\n"));
  CHECK_THAT(text, Catch::Contains(
                       "relsupd_instances{app=\"shop\",type=\"web\",state=\"ready\"} 2\n"));
  CHECK_THAT(text, Catch::Contains(
                       "relsupd_instances{app=\"shop\",type=\"web\",state=\"backoff\"} 1\n"));
  CHECK_THAT(text, Catch::Contains(
                       "relsupd_instance_restarts_total{app=\"shop\",process=\"web.1\"} 2\n"));
  CHECK_THAT(text, Catch::Contains("relsupd_instance_exits_total{app=\"shop\",process=\"web.1\","
                                   "reason=\"health\"} 1\n"));
  CHECK_THAT(text, Catch::Contains(
                       "relsupd_instance_memory_bytes{app=\"shop\",process=\"web.1\"} 1048576\n"));
  CHECK_THAT(text, Catch::Contains(
                       "relsupd_instance_cpu_seconds_total{app=\"shop\",process=\"web.1\"} 1.25\n"));
  // No usage yet: no sample (not a 0).
  CHECK_THAT(text, !Catch::Contains("relsupd_instance_memory_bytes{app=\"shop\",process=\"web.2\"}"));
  CHECK_THAT(text, Catch::Contains("relsupd_release_active{app=\"shop\",release=\"v3\"} 1\n"));
  CHECK_THAT(text, Catch::Contains(
                       "relsupd_log_lines_total{app=\"a\\\"b\\\\c\\nd\",stream=\"out\"} 4\n"));
  CHECK_THAT(text, Catch::Contains(
                       "relsupd_control_requests_total{method=\"ps\",outcome=\"ok\"} 7\n"));
  // Every family has its HELP and TYPE, once.
  for (const char* f : {"relsupd_instances", "relsupd_instance_restarts_total",
                        "relsupd_instance_exits_total", "relsupd_instance_memory_bytes",
                        "relsupd_instance_cpu_seconds_total", "relsupd_activations_total",
                        "relsupd_release_active", "relsupd_log_lines_total",
                        "relsupd_log_lines_dropped_total", "relsupd_control_requests_total"}) {
    INFO(f);
    CHECK_THAT(text, Catch::Contains("# HELP " + std::string(f) + " "));
    CHECK_THAT(text, Catch::Contains("# TYPE " + std::string(f) + " "));
  }
  CHECK(EscapeLabelValue("plain") == "plain");
}

}  // namespace
}  // namespace relsupd

#include "daemon/control/long_poll.h"

namespace relsupd {
namespace {

TEST_CASE("LongPolls runs a waiter again when its key is poked, answers it at its deadline, and keeps to its limits") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    int news = 0;
    std::vector<std::string> replies;
    // Replies once there is news, or (must_reply) with what it has.
    auto waiter = [&](std::string name) {
      return [&, name](bool must_reply) {
        if (news == 0 && !must_reply) return false;
        replies.push_back(name + (must_reply ? ":late" : ":news"));
        return true;
      };
    };
    // After what its waiters write to: it answers them when it goes.
    LongPolls polls(&loop);
    REQUIRE(polls.Add(1000, {"logs:shop"}, 60'000, waiter("shop")).ok());
    REQUIRE(polls.Add(1000, {"logs:blog"}, 60'000, waiter("blog")).ok());
    REQUIRE(polls.Add(1000, {}, 60'000, waiter("any")).ok());
    // A poke with nothing new: each waiter on the key runs, none replies.
    polls.Poke("logs:shop");
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(replies.empty());
    CHECK(polls.size() == 3);
    news = 1;
    polls.Poke("logs:shop");
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(replies == std::vector<std::string>{"shop:news", "any:news"});
    CHECK(polls.size() == 1);
    // The deadline answers a waiter that got no news.
    news = 0;
    REQUIRE(polls.Add(1000, {"events"}, 30, waiter("short")).ok());
    while (replies.size() < 3) uv_run(&loop, UV_RUN_ONCE);
    CHECK(replies.back() == "short:late");
    // Limits: per uid, then in all; a refusal keeps nothing.
    size_t added = 0;
    while (polls.Add(2000, {"x"}, 60'000, waiter("u")).ok()) ++added;
    CHECK(added == LongPolls::kMaxWaitersPerUid);
    Status refused = polls.Add(2000, {"x"}, 60'000, waiter("u"));
    CHECK(refused.code() == StatusCode::kBusy);
    CHECK_THAT(refused.message(), Catch::Contains("uid 2000 already has"));
    for (uid_t uid = 3000; polls.size() < LongPolls::kMaxWaiters; ++uid)
      REQUIRE(polls.Add(uid, {"x"}, 60'000, waiter("u")).ok());
    CHECK(polls.Add(1, {"x"}, 60'000, waiter("u")).code() == StatusCode::kBusy);
    // AnswerAll (a re-exec's drain): every one replies now.
    // (Forget is checked below, on an empty set.)
    const size_t before = replies.size();
    polls.AnswerAll();
    CHECK(replies.size() == before + LongPolls::kMaxWaiters);
    CHECK(polls.size() == 0);
    CHECK(polls.Add(2000, {"x"}, 60'000, waiter("u")).ok());

    // Forget: a connection's waiters go unanswered in the next turn, and
    // their uid's places with them; others stay.
    polls.AnswerAll();
    const size_t answered = replies.size();
    for (size_t i = 0; i < LongPolls::kMaxWaitersPerUid; ++i)
      REQUIRE(polls.Add(4000, {"x"}, 60'000, waiter("gone"), /*connection=*/7).ok());
    REQUIRE(polls.Add(4001, {"x"}, 60'000, waiter("other"), /*connection=*/8).ok());
    CHECK(polls.Add(4000, {"x"}, 60'000, waiter("u"), 9).code() == StatusCode::kBusy);
    polls.Forget(7);
    polls.Forget(0);  // no connection: nothing
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(polls.size() == 1);
    CHECK(replies.size() == answered);  // none of them answered
    CHECK(polls.Add(4000, {"x"}, 60'000, waiter("u"), 9).ok());
    CHECK(polls.size() == 2);
    // A request still queued when its connection went is not parked.
    polls.Forget(12);
    CHECK(polls.Add(4000, {"x"}, 60'000, waiter("late"), 12).ok());
    CHECK(polls.size() == 2);
    polls.AnswerAll();
  }
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace
}  // namespace relsupd

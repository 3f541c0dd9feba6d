#include "tests/support/cli.h"

#include "cli/client.h"
#include "tests/support/failure.h"

namespace relsupd::support {

std::string RelsupdBin() { return RELSUPD_BIN; }

ProcResult RunRelsupd(const std::vector<std::string>& args,
                      const RunOptions& options) {
  std::vector<std::string> argv = {RelsupdBin()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv, options);
}

ProcResult RunCtl(const std::string& socket,
                  const std::vector<std::string>& args,
                  const RunOptions& options) {
  std::vector<std::string> all = {"ctl", "--socket", socket};
  all.insert(all.end(), args.begin(), args.end());
  return RunRelsupd(all, options);
}

std::string CtlOk(const std::string& socket,
                  const std::vector<std::string>& args,
                  const RunOptions& options) {
  ProcResult r = RunCtl(socket, args, options);
  if (!r.status.Exited(0)) {
    std::string cmd = "ctl";
    for (const auto& a : args) cmd += " " + a;
    Fail("'" + cmd + "' failed: " + r.Describe());
  }
  return r.out;
}

Json CtlJson(const std::string& socket, const std::vector<std::string>& args,
             const RunOptions& options) {
  std::vector<std::string> all = {"--json"};
  all.insert(all.end(), args.begin(), args.end());
  std::string out = CtlOk(socket, all, options);
  Json j = Json::parse(out, nullptr, false);
  if (j.is_discarded()) Fail("ctl --json printed no JSON: " + out);
  return j;
}

Json CallRaw(const std::string& socket, std::string_view method, Json params) {
  auto client = Client::Connect(socket);
  if (!client.ok()) Fail(client.status().message());
  Json request = {{"jsonrpc", "2.0"},
                  {"id", 1},
                  {"method", method},
                  {"params", std::move(params)}};
  auto line = client->RoundTrip(request.dump());
  if (!line.ok()) Fail(line.status().message());
  Json response = Json::parse(*line, nullptr, false);
  if (!response.is_object()) Fail("malformed response: " + *line);
  return response;
}

Json Call(const std::string& socket, std::string_view method, Json params) {
  Json response = CallRaw(socket, method, std::move(params));
  if (!response.contains("result"))
    Fail(std::string(method) + " failed: " + response.dump());
  return response["result"];
}

}  // namespace relsupd::support

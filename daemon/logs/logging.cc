#include "daemon/logs/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

namespace relsupd {
namespace {

// Writes the syslog priority journald expects: "<3>" for error, and so on.
class SyslogPriorityFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    int prio = 6;
    switch (msg.level) {
      case spdlog::level::critical: prio = 2; break;
      case spdlog::level::err: prio = 3; break;
      case spdlog::level::warn: prio = 4; break;
      case spdlog::level::info: prio = 6; break;
      default: prio = 7; break;
    }
    const char text[4] = {'<', static_cast<char>('0' + prio), '>', ' '};
    dest.append(text, text + 4);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<SyslogPriorityFlag>();
  }
};

}  // namespace

void SetupLogging() {
  auto logger = spdlog::stderr_logger_st("relsupd");
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  if (std::getenv("JOURNAL_STREAM") != nullptr) {
    formatter->add_flag<SyslogPriorityFlag>('*').set_pattern("%*%v");
  } else {
    formatter->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  }
  logger->set_formatter(std::move(formatter));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
}

Status SetLogLevel(const std::string& level) {
  auto l = spdlog::level::from_str(level);
  if (l == spdlog::level::off && level != "off")
    return InvalidArgument("unknown log level '" + level + "'");
  spdlog::set_level(l);
  return Status::Ok();
}

}  // namespace relsupd

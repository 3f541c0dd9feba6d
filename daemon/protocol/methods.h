#pragma once
// Names of the control protocol's methods, shared by daemon and client.

namespace relsupd::rpc::method {

inline constexpr const char kDaemonInfo[] = "daemon.info";
inline constexpr const char kAppCreate[] = "app.create";
inline constexpr const char kAppShow[] = "app.show";
inline constexpr const char kAppList[] = "app.list";
inline constexpr const char kAppApply[] = "app.apply";
inline constexpr const char kHistory[] = "history";
inline constexpr const char kHistoryVerify[] = "history.verify";

}  // namespace relsupd::rpc::method

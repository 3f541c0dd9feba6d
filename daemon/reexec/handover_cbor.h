#pragma once
// Internal to daemon/reexec's codec (handover_codec.cc,
// handover_codec_supervise.cc): the CBOR items of the handover record as
// nlohmann::json values. No other code includes this. Pure; any thread.
//
// Each struct lists its fields once, in a Fields(s, v) template that calls
// v("key", s.field) per field (s const for writing, not for reading),
// mostly written by RELSUPD_CODEC_FIELDS(Struct, field, ...) below;
// Encode() and Decode() below turn any field into its CBOR item and back,
// the field's path in every error. A struct is a map keyed by field name,
// an unset optional is left out, an enum is its name.

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/config/process_file.h"
#include "daemon/supervise/snapshot.h"

// The drift guard of the codec files: a struct of the record whose size
// changed has a new field the codec must learn.
#define RELSUPD_CODEC_SIZE(T, n) \
  static_assert(sizeof(T) == (n), #T " changed: add the new field to the handover codec")

// RELSUPD_FIELDS(a, b) in a Fields(s, v) body: v("a", s.a); v("b", s.b);
// for the fields whose key is their own name; a field with another key or a
// wrapper (AtLeast, AsBytes, Nest, Limits) gets its own v(...) line. The
// C++20 __VA_OPT__ form of a for-each macro: each RELSUPD_FIELDS_EXPAND
// level rescans its argument four times: 4^3 = 64 fields at most.
#define RELSUPD_FIELDS(...) __VA_OPT__(RELSUPD_FIELDS_EXPAND(RELSUPD_FIELDS_ONE(__VA_ARGS__)))
#define RELSUPD_FIELDS_ONE(f, ...) \
  v(#f, s.f);                      \
  __VA_OPT__(RELSUPD_FIELDS_AGAIN RELSUPD_FIELDS_PARENS(__VA_ARGS__))
// The whole Fields() of a struct whose every key is its field's name.
#define RELSUPD_CODEC_FIELDS(T, ...)        \
  template <Is<T> S, typename V>            \
  void Fields(S& s, V&& v) {                \
    RELSUPD_FIELDS(__VA_ARGS__);            \
  }
#define RELSUPD_FIELDS_PARENS ()
#define RELSUPD_FIELDS_AGAIN() RELSUPD_FIELDS_ONE
#define RELSUPD_FIELDS_EXPAND(...) RELSUPD_FIELDS_X2(RELSUPD_FIELDS_X2(RELSUPD_FIELDS_X2(RELSUPD_FIELDS_X2(__VA_ARGS__))))
#define RELSUPD_FIELDS_X2(...) RELSUPD_FIELDS_X1(RELSUPD_FIELDS_X1(RELSUPD_FIELDS_X1(RELSUPD_FIELDS_X1(__VA_ARGS__))))
#define RELSUPD_FIELDS_X1(...) RELSUPD_FIELDS_X0(RELSUPD_FIELDS_X0(RELSUPD_FIELDS_X0(RELSUPD_FIELDS_X0(__VA_ARGS__))))
#define RELSUPD_FIELDS_X0(...) __VA_ARGS__

namespace relsupd::handover_cbor {

using Json = nlohmann::json;

// A record that cannot be read; caught in DecodeHandover. `what` starts
// with the field's path ("supervisor.apps[0].active.run.uid").
struct DecodeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Where an item sits in the record: a chain of nodes on the decoder's
// stack, spelled out only for an error (a decode of 1,000 instances
// visits some 50,000 items).
struct Path {
  const Path* parent = nullptr;  // null: the record itself
  const char* field = nullptr;   // a struct's field
  const std::string* key = nullptr;  // else a map's item
  size_t index = 0;                  // else an array's item
  Path Field(const char* name) const { return Path{this, name, nullptr, 0}; }
  Path Key(const std::string& k) const { return Path{this, nullptr, &k, 0}; }
  Path Index(size_t i) const { return Path{this, nullptr, nullptr, i}; }
  std::string str() const {
    if (parent == nullptr) return "";
    std::string up = parent->str();
    if (field != nullptr) return up.empty() ? field : up + "." + field;
    return up + "[" + (key != nullptr ? *key : std::to_string(index)) + "]";
  }
};

[[noreturn]] inline void Fail(const Path& path, const std::string& what) {
  throw DecodeError(path.str() + ": " + what);
}

// S is T or const T: the constraint of each struct's Fields().
template <typename S, typename T>
concept Is = std::is_same_v<std::remove_const_t<S>, T>;

// ---- enums as names ------------------------------------------------------

template <typename E>
using Names = std::pair<E, const char*>;

// Not InstanceStateName(): that prints kStoppingFault as "stopping".
inline constexpr Names<InstanceState> kStates[] = {
    {InstanceState::kStopped, "stopped"},   {InstanceState::kStarting, "starting"},
    {InstanceState::kRunning, "running"},   {InstanceState::kReady, "ready"},
    {InstanceState::kStopping, "stopping"}, {InstanceState::kStoppingFault, "stopping-unready"},
    {InstanceState::kBackoff, "backoff"},   {InstanceState::kExited, "exited"},
    {InstanceState::kFailed, "failed"}};
static_assert(std::size(kStates) == kInstanceStateCount, "name every InstanceState");
inline constexpr Names<StopCause> kStopCauses[] = {{StopCause::kNone, "none"},
                                            {StopCause::kRequested, "requested"},
                                            {StopCause::kNotReady, "not-ready"},
                                            {StopCause::kHealth, "health"},
                                            {StopCause::kWatchdog, "watchdog"},
                                            {StopCause::kMemory, "memory"},
                                            {StopCause::kOomKilled, "oom-killed"}};
inline constexpr Names<RestartPolicy> kRestarts[] = {{RestartPolicy::kAlways, "always"},
                                              {RestartPolicy::kOnFailure, "on-failure"},
                                              {RestartPolicy::kNever, "never"}};
inline constexpr Names<ReadyKind> kReadyKinds[] = {{ReadyKind::kNone, "none"},
                                            {ReadyKind::kNotify, "notify"},
                                            {ReadyKind::kTcp, "tcp"},
                                            {ReadyKind::kHttp, "http"},
                                            {ReadyKind::kExec, "exec"}};
inline constexpr Names<StopMode> kStopModes[] = {{StopMode::kGroup, "group"}, {StopMode::kMain, "main"}};

// The name table of each enum of the record.
inline constexpr const auto& NamesOf(InstanceState) { return kStates; }
inline constexpr const auto& NamesOf(StopCause) { return kStopCauses; }
inline constexpr const auto& NamesOf(RestartPolicy) { return kRestarts; }
inline constexpr const auto& NamesOf(ReadyKind) { return kReadyKinds; }
inline constexpr const auto& NamesOf(StopMode) { return kStopModes; }

// ---- fields whose item is not the plain one of their type ------------------
// (T is the field's type, const when writing.)

// Raw bytes as a CBOR byte string, at most `max` of them.
template <typename T>
struct ByteString {
  T& bytes;
  size_t max;
};
template <typename T>
ByteString<T> AsBytes(T& bytes, size_t max) { return {bytes, max}; }

// A map of text to int whose values are at least `lo`.
template <typename T>
struct IntsFrom {
  T& map;
  int64_t lo;
};
template <typename T>
IntsFrom<T> AtLeast(T& map, int64_t lo) { return {map, lo}; }

// A soft and a hard limit as the array [soft, hard].
template <typename T>
struct SoftHard {
  T& soft;
  T& hard;
};
template <typename T>
SoftHard<T> Limits(T& soft, T& hard) { return {soft, hard}; }

// A map of its own for some fields of the struct: fields(v) calls
// v("key", field) for each.
template <typename F>
struct Nested {
  F fields;
};
template <typename F>
Nested<F> Nest(F fields) { return {std::move(fields)}; }

// ---- the generic parts -----------------------------------------------------

template <typename T, template <typename...> class Of>
inline constexpr bool kIs = false;
template <template <typename...> class Of, typename... A>
inline constexpr bool kIs<Of<A...>, Of> = true;

// handover_codec_supervise.cc: the supervise part of the record.
Json Encode(const SupervisorSnapshot& s);
void Decode(const Json& v, const Path& path, SupervisorSnapshot* s);

template <typename T>
Json Encode(const T& field);
template <typename T>
void Decode(const Json& v, const Path& path, T* out);

// The visitor that writes each field into `obj`.
struct Writer {
  Json& obj;
  template <typename T>
  void operator()(const char* key, const T& field) const {
    if constexpr (kIs<T, std::optional>) {
      if (field) obj[key] = Encode(*field);
    } else {
      obj[key] = Encode(field);
    }
  }
};

// The visitor that reads each field present in `obj` (a map at `path`).
struct Reader {
  const Json& obj;
  const Path& path;
  template <typename T>
  void operator()(const char* key, T&& field) const {
    auto it = obj.find(key);
    if (it != obj.end() && !it->is_null()) Decode(*it, path.Field(key), &field);
  }
};

// A struct with Fields() as a map.
template <typename S>
Json EncodeFields(const S& s) {
  Json obj = Json::object();
  Fields(s, Writer{obj});
  return obj;
}

inline void CheckObject(const Json& v, const Path& path) {
  if (!v.is_object()) Fail(path, "not a map");
}

template <typename S>
void DecodeFields(const Json& v, const Path& path, S* s) {
  CheckObject(v, path);
  Fields(*s, Reader{v, path});
}

template <typename T>
Json Encode(const T& field) {
  if constexpr (std::is_enum_v<T>) {
    for (const auto& [e, name] : NamesOf(field))
      if (e == field) return name;
    // A value missing from the table is a bug in this file.
    throw std::logic_error("handover codec: an enum value has no name");
  } else if constexpr (std::is_arithmetic_v<T> || std::is_same_v<T, std::string>) {
    return Json(field);
  } else if constexpr (kIs<T, std::vector> || kIs<T, std::set>) {
    Json items = Json::array();
    for (const auto& item : field) items.push_back(Encode(item));
    return items;
  } else if constexpr (kIs<T, std::map>) {
    Json items = Json::object();
    for (const auto& [k, item] : field) items[k] = Encode(item);
    return items;
  } else if constexpr (kIs<T, ByteString>) {
    return Json::binary(std::vector<uint8_t>(field.bytes.begin(), field.bytes.end()));
  } else if constexpr (kIs<T, IntsFrom>) {
    return Encode(field.map);
  } else if constexpr (kIs<T, SoftHard>) {
    return Json::array({field.soft, field.hard});
  } else if constexpr (kIs<T, Nested>) {
    Json obj = Json::object();
    field.fields(Writer{obj});
    return obj;
  } else {
    return EncodeFields(field);
  }
}

inline int64_t IntValue(const Json& v, const Path& path, int64_t lo, int64_t hi) {
  if (!v.is_number_integer()) Fail(path, "not an integer");
  if (v.is_number_unsigned() &&
      v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    Fail(path, "out of range");
  int64_t n = v.get<int64_t>();
  if (n < lo || n > hi) Fail(path, "out of range");
  return n;
}

// A scalar: a bool, an integer, a double, a text string or an enum's name.
template <typename T>
void DecodeScalar(const Json& v, const Path& path, T* out) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) Fail(path, "not a boolean");
    *out = v.get<bool>();
  } else if constexpr (std::is_unsigned_v<T> && sizeof(T) == sizeof(uint64_t)) {
    if (!v.is_number_unsigned()) Fail(path, "not an unsigned integer");
    *out = v.get<uint64_t>();
  } else if constexpr (std::is_integral_v<T>) {
    *out = static_cast<T>(
        IntValue(v, path, std::numeric_limits<T>::min(), std::numeric_limits<T>::max()));
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number()) Fail(path, "not a number");
    *out = v.get<double>();
  } else {
    if (!v.is_string()) Fail(path, "not a text string");
    if constexpr (std::is_same_v<T, std::string>) {
      *out = v.get<std::string>();
    } else {
      const std::string name = v.get<std::string>();
      for (const auto& [e, n] : NamesOf(T{}))
        if (name == n) return void(*out = e);
      Fail(path, "unknown name '" + name + "'");
    }
  }
}

// The items of an array or a map: each(item, its path).
template <typename F>
void DecodeItems(const Json& v, const Path& path, bool map, F each) {
  static const std::string kNoKey;
  if (map ? !v.is_object() : !v.is_array()) Fail(path, map ? "not a map" : "not an array");
  if (map) {
    for (const auto& [k, item] : v.items()) each(k, item, path.Key(k));
  } else {
    for (size_t i = 0; i < v.size(); ++i) each(kNoKey, v[i], path.Index(i));
  }
}

template <typename T>
void Decode(const Json& v, const Path& path, T* out) {
  using Key = const std::string&;
  using At = const Path&;
  if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T> || std::is_same_v<T, std::string>) {
    DecodeScalar(v, path, out);
  } else if constexpr (kIs<T, std::optional>) {
    Decode(v, path, &out->emplace());
  } else if constexpr (kIs<T, std::vector>) {
    DecodeItems(v, path, false, [&](Key, const Json& i, At p) { Decode(i, p, &out->emplace_back()); });
  } else if constexpr (kIs<T, std::set>) {
    DecodeItems(v, path, false, [&](Key, const Json& i, At p) {
      typename T::value_type item;
      Decode(i, p, &item);
      out->insert(std::move(item));
    });
  } else if constexpr (kIs<T, std::map>) {
    DecodeItems(v, path, true, [&](Key k, const Json& i, At p) { Decode(i, p, &(*out)[k]); });
  } else if constexpr (kIs<T, ByteString>) {
    if (!v.is_binary()) Fail(path, "not a byte string");
    const auto& bytes = v.get_binary();
    if (bytes.size() > out->max)
      Fail(path, std::to_string(bytes.size()) + " bytes, over the " + std::to_string(out->max) +
                     " a partial line can hold");
    out->bytes.assign(bytes.begin(), bytes.end());
  } else if constexpr (kIs<T, IntsFrom>) {
    DecodeItems(v, path, true, [&](Key k, const Json& i, At p) {
      out->map[k] = static_cast<int>(IntValue(i, p, out->lo, std::numeric_limits<int>::max()));
    });
  } else if constexpr (kIs<T, SoftHard>) {
    if (!v.is_array() || v.size() != 2 || !v[0].is_number_unsigned() || !v[1].is_number_unsigned())
      Fail(path, "not [soft, hard]");
    out->soft = v[0].get<uint64_t>();
    out->hard = v[1].get<uint64_t>();
  } else if constexpr (kIs<T, Nested>) {
    CheckObject(v, path);
    out->fields(Reader{v, path});
  } else {
    DecodeFields(v, path, out);
  }
}

}  // namespace relsupd::handover_cbor

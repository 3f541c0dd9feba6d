#include "cli/ps_rows.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace relsupd::cli {
namespace {

// A cursor over one line of JSON. Every method returns false at the first
// byte that is not what it reads (the caller gives up on the line).
class Reader {
 public:
  // Texts that are not in the line as they are go to `keep`.
  Reader(std::string_view s, std::deque<std::string>* keep) : s_(s), keep_(keep) {}

  void SkipWs() {
    while (i_ < s_.size() &&
           (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  // After any whitespace: `c`, taken.
  bool Eat(char c) {
    SkipWs();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool AtEnd() {
    SkipWs();
    return i_ == s_.size();
  }

  // A string, its text decoded into `*out`.
  bool String(std::string* out) {
    out->clear();
    if (!Eat('"')) return false;
    return StringRest(out);
  }
  // A string as a view: of the line when it has no escape, else of its
  // decoded text kept in `keep_`.
  bool StringView(std::string_view* out) {
    if (!Eat('"')) return false;
    const size_t start = i_;
    while (i_ < s_.size()) {
      const unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        *out = s_.substr(start, i_ - start);
        ++i_;
        return true;
      }
      if (c == '\\') break;  // decode it after all
      if (c < 0x20) return false;
      if (c < 0x80) {
        ++i_;
        continue;
      }
      const size_t n = Utf8Length(i_);
      if (n == 0) return false;
      i_ += n;
    }
    if (i_ == s_.size()) return false;
    std::string decoded(s_.substr(start, i_ - start));
    if (!StringRest(&decoded)) return false;
    keep_->push_back(std::move(decoded));
    *out = keep_->back();
    return true;
  }
  // The rest of a string after its opening quote, appended to `*out`.
  bool StringRest(std::string* out) {
    while (i_ < s_.size()) {
      // A run of plain ASCII at once.
      size_t j = i_;
      while (j < s_.size()) {
        const unsigned char c = static_cast<unsigned char>(s_[j]);
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
        ++j;
      }
      out->append(s_.data() + i_, j - i_);
      i_ = j;
      if (i_ == s_.size()) return false;
      const unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) return false;  // a control character must be escaped
      if (c == '\\') {
        if (!Escape(out)) return false;
        continue;
      }
      const size_t n = Utf8Length(i_);
      if (n == 0) return false;
      out->append(s_.data() + i_, n);
      i_ += n;
    }
    return false;
  }
  // null, true, false, a number or a string.
  bool Scalar(PsCell* out) {
    SkipWs();
    if (i_ == s_.size()) return false;
    *out = PsCell();
    switch (s_[i_]) {
      case 'n': return Word("null");
      case 't':
        out->kind = PsCell::Kind::kBool;
        out->boolean = true;
        out->text = "true";
        return Word("true");
      case 'f':
        out->kind = PsCell::Kind::kBool;
        out->text = "false";
        return Word("false");
      case '"': out->kind = PsCell::Kind::kString; return StringView(&out->text);
      default: return Number(out);
    }
  }

 private:
  bool Word(std::string_view w) {
    if (s_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }

  // JSON's number grammar. An integer that fits int64_t reads exactly (its
  // text the digits nlohmann-json would print); any other number as a
  // double, its text the token (float_token). An integer beyond int64_t
  // fails (the caller's DOM parse reads it).
  bool Number(PsCell* out) {
    const size_t start = i_;
    auto digits = [this] {
      const size_t from = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      return i_ > from;
    };
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    if (i_ < s_.size() && s_[i_] == '0') {
      ++i_;
    } else if (!digits()) {
      return false;
    }
    bool integer = true;
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (!digits()) return false;
      integer = false;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (!digits()) return false;
      integer = false;
    }
    const char* first = s_.data() + start;
    const char* last = s_.data() + i_;
    out->kind = PsCell::Kind::kNumber;
    if (integer) {
      int64_t v = 0;
      if (std::from_chars(first, last, v).ec != std::errc()) return false;
      out->integer = v;
      out->number = static_cast<double>(v);
      // nlohmann-json prints an integer as its digits: the token, but for "-0".
      out->text = v == 0 && *first == '-' ? std::string_view("0") : s_.substr(start, i_ - start);
      return true;
    }
    // strtod, not from_chars: libstdc++'s from_chars for double would add
    // libm to the front end's dynamic libraries (fegetround). relsupd ctl
    // never calls setlocale(), so the decimal point is '.'.
    char buf[64];
    const size_t len = static_cast<size_t>(last - first);
    if (len >= sizeof buf) return false;
    std::memcpy(buf, first, len);
    buf[len] = '\0';
    char* end = nullptr;
    errno = 0;
    const double d = std::strtod(buf, &end);
    if (end != buf + len || errno == ERANGE || !std::isfinite(d)) return false;
    out->number = d;
    out->integer = std::fabs(d) < 9.2e18 ? static_cast<int64_t>(d) : 0;
    out->text = s_.substr(start, i_ - start);
    out->float_token = true;
    return true;
  }

  // After a backslash: the escaped character, appended.
  bool Escape(std::string* out) {
    ++i_;  // the backslash
    if (i_ == s_.size()) return false;
    const char c = s_[i_++];
    switch (c) {
      case '"': out->push_back('"'); return true;
      case '\\': out->push_back('\\'); return true;
      case '/': out->push_back('/'); return true;
      case 'b': out->push_back('\b'); return true;
      case 'f': out->push_back('\f'); return true;
      case 'n': out->push_back('\n'); return true;
      case 'r': out->push_back('\r'); return true;
      case 't': out->push_back('\t'); return true;
      case 'u': break;
      default: return false;
    }
    char32_t cp = 0;
    if (!Hex4(&cp)) return false;
    if (cp >= 0xD800 && cp <= 0xDBFF) {  // a high surrogate: its low one next
      char32_t low = 0;
      if (!Word("\\u") || !Hex4(&low) || low < 0xDC00 || low > 0xDFFF) return false;
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      return false;  // a low surrogate alone
    }
    AppendUtf8(cp, out);
    return true;
  }

  bool Hex4(char32_t* cp) {
    if (s_.size() - i_ < 4) return false;
    char32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = s_[i_++];
      v <<= 4;
      if (h >= '0' && h <= '9') {
        v |= static_cast<char32_t>(h - '0');
      } else if (h >= 'a' && h <= 'f') {
        v |= static_cast<char32_t>(h - 'a' + 10);
      } else if (h >= 'A' && h <= 'F') {
        v |= static_cast<char32_t>(h - 'A' + 10);
      } else {
        return false;
      }
    }
    *cp = v;
    return true;
  }

  static void AppendUtf8(char32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  // The length of the well-formed UTF-8 sequence at `at` (shortest form,
  // no surrogates, at most U+10FFFF: what nlohmann-json accepts), or 0.
  size_t Utf8Length(size_t at) const {
    auto b = [&](size_t k) -> int {
      return at + k < s_.size() ? static_cast<unsigned char>(s_[at + k]) : -1;
    };
    auto in = [](int v, int lo, int hi) { return v >= lo && v <= hi; };
    const int c = b(0);
    if (in(c, 0xC2, 0xDF)) return in(b(1), 0x80, 0xBF) ? 2 : 0;
    if (c == 0xE0) return in(b(1), 0xA0, 0xBF) && in(b(2), 0x80, 0xBF) ? 3 : 0;
    if (in(c, 0xE1, 0xEC) || in(c, 0xEE, 0xEF))
      return in(b(1), 0x80, 0xBF) && in(b(2), 0x80, 0xBF) ? 3 : 0;
    if (c == 0xED) return in(b(1), 0x80, 0x9F) && in(b(2), 0x80, 0xBF) ? 3 : 0;
    if (c == 0xF0)
      return in(b(1), 0x90, 0xBF) && in(b(2), 0x80, 0xBF) && in(b(3), 0x80, 0xBF) ? 4 : 0;
    if (in(c, 0xF1, 0xF3))
      return in(b(1), 0x80, 0xBF) && in(b(2), 0x80, 0xBF) && in(b(3), 0x80, 0xBF) ? 4 : 0;
    if (c == 0xF4)
      return in(b(1), 0x80, 0x8F) && in(b(2), 0x80, 0xBF) && in(b(3), 0x80, 0xBF) ? 4 : 0;
    return 0;
  }

  std::string_view s_;
  size_t i_ = 0;
  std::deque<std::string>* keep_;
};

// [a, b, ...] of strings.
bool ReadColumns(Reader& r, std::vector<std::string>* out) {
  if (!r.Eat('[')) return false;
  if (r.Eat(']')) return true;
  do {
    std::string name;
    if (!r.String(&name)) return false;
    out->push_back(std::move(name));
  } while (r.Eat(','));
  return r.Eat(']');
}

// [[scalar, ...], ...], each row `width` long, handed to `sink`; the
// texts a row keeps (in `keep`, the reader's) go with it.
bool ReadRows(Reader& r, size_t width, std::deque<std::string>* keep, PsRowSink* sink) {
  if (!r.Eat('[')) return false;
  if (r.Eat(']')) return true;
  std::vector<PsCell> cells;
  cells.reserve(width);
  do {
    if (!r.Eat('[')) return false;
    cells.clear();
    keep->clear();
    if (!r.Eat(']')) {
      do {
        cells.emplace_back();
        if (cells.size() > width || !r.Scalar(&cells.back())) return false;
      } while (r.Eat(','));
      if (!r.Eat(']')) return false;
    }
    if (cells.size() != width) return false;
    sink->Row(cells);
  } while (r.Eat(','));
  return r.Eat(']');
}

bool ReadResult(Reader& r, std::deque<std::string>* keep, PsRowSink* sink) {
  if (!r.Eat('{')) return false;
  std::vector<std::string> columns;
  bool have_columns = false, have_rows = false;
  do {
    std::string key;
    if (!r.String(&key) || !r.Eat(':')) return false;
    if (key == "columns" && !have_columns) {
      if (!ReadColumns(r, &columns) || columns.empty()) return false;
      sink->Columns(columns);
      have_columns = true;
    } else if (key == "rows" && have_columns && !have_rows) {
      if (!ReadRows(r, columns.size(), keep, sink)) return false;
      have_rows = true;
    } else {
      return false;  // rows before columns, or another key
    }
  } while (r.Eat(','));
  return r.Eat('}') && have_rows;
}

// A sink that keeps every cell (for ReadPsRowsResponse's collecting form):
// each text copied, since a row's texts live only during its call.
class Collect final : public PsRowSink {
 public:
  explicit Collect(PsRows* out) : out_(out) {}
  void Columns(const std::vector<std::string>& names) override { out_->columns = names; }
  void Row(const std::vector<PsCell>& cells) override {
    for (PsCell c : cells) {
      if (!c.text.empty()) c.text = out_->Keep(std::string(c.text));
      out_->cells.push_back(c);
    }
  }

 private:
  PsRows* out_;
};

}  // namespace

std::string CellText(const PsCell& c) {
  return c.float_token ? rpc::Json(c.number).dump() : std::string(c.text);
}

void PsRows::AddCell(const rpc::Json& j) {
  PsCell c;
  if (j.is_string()) {
    c.kind = PsCell::Kind::kString;
    c.text = Keep(j.get<std::string>());
  } else if (!j.is_null()) {
    c.text = Keep(j.dump());
    if (j.is_boolean()) {
      c.kind = PsCell::Kind::kBool;
      c.boolean = j.get<bool>();
    } else if (j.is_number()) {
      c.kind = PsCell::Kind::kNumber;
      c.number = j.get<double>();
      c.integer = !j.is_number_float()          ? j.get<int64_t>()
                  : std::fabs(c.number) < 9.2e18 ? static_cast<int64_t>(c.number)
                                                 : 0;
    } else {
      c.kind = PsCell::Kind::kOther;
    }
  }
  cells.push_back(c);
}

bool ReadPsRowsResponse(std::string_view line, int64_t id, PsRowSink* sink) {
  std::deque<std::string> keep;
  Reader r(line, &keep);
  bool have_id = false, have_result = false, have_version = false;
  if (!r.Eat('{')) return false;
  do {
    std::string key;
    if (!r.String(&key) || !r.Eat(':')) return false;
    if (key == "id" && !have_id) {
      PsCell c;
      if (!r.Scalar(&c) || c.kind != PsCell::Kind::kNumber || c.text != std::to_string(id))
        return false;
      have_id = true;
    } else if (key == "jsonrpc" && !have_version) {
      PsCell c;
      if (!r.Scalar(&c) || c.kind != PsCell::Kind::kString) return false;
      have_version = true;
    } else if (key == "result" && !have_result) {
      if (!ReadResult(r, &keep, sink)) return false;
      have_result = true;
    } else {
      return false;  // "error", or a key this reader does not know
    }
  } while (r.Eat(','));
  return r.Eat('}') && r.AtEnd() && have_id && have_result;
}

std::optional<PsRows> ReadPsRowsResponse(std::string_view line, int64_t id) {
  PsRows out;
  Collect sink(&out);
  if (!ReadPsRowsResponse(line, id, &sink)) return std::nullopt;
  return out;
}

}  // namespace relsupd::cli

#include "cli/table.h"

#include <locale.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cwchar>
#include <numeric>

namespace relsupd {
namespace {

constexpr std::string_view kEllipsis = "…";
constexpr size_t kMinColumn = 3;

// The C.UTF-8 locale, made once, for mbrtowc(3) and wcwidth(3) whatever
// the caller's locale (`relsupd ctl` never calls setlocale()).
locale_t Utf8Locale() {
  static const locale_t loc = ::newlocale(LC_CTYPE_MASK, "C.UTF-8", locale_t{});
  return loc;
}

bool IsAscii(std::string_view text) {
  for (char c : text)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

// Calls `each(bytes, width)` for each character of `text`, in order. A
// byte below 0x80 is one column (wcwidth gives printable ASCII 1 and the
// controls -1, which count as 1): only other text asks the locale.
template <typename Each>
void ForEachChar(std::string_view text, Each each) {
  if (IsAscii(text)) {
    for (size_t i = 0; i < text.size(); ++i)
      if (!each(text.substr(i, 1), 1)) return;
    return;
  }
  const locale_t loc = Utf8Locale();
  const locale_t old = loc ? ::uselocale(loc) : locale_t{};
  std::mbstate_t st{};
  size_t i = 0;
  bool go_on = true;
  while (i < text.size() && go_on) {
    wchar_t wc = 0;
    size_t n = loc ? std::mbrtowc(&wc, text.data() + i, text.size() - i, &st)
                   : static_cast<size_t>(-1);
    if (n == 0) n = 1;  // an embedded NUL
    int w = 1;
    if (n == static_cast<size_t>(-1) || n == static_cast<size_t>(-2)) {
      n = 1;  // not UTF-8: one byte, one column
      st = std::mbstate_t{};
    } else {
      w = ::wcwidth(wc);
      if (w < 0) w = 1;
    }
    go_on = each(text.substr(i, n), static_cast<size_t>(w));
    i += n;
  }
  if (loc) ::uselocale(old);
}

const char* StateColour(std::string_view state) {
  if (state == "ready" || state == "active") return "\033[32m";  // green
  if (state == "failed") return "\033[31m";                       // red
  if (state == "starting" || state == "running" || state == "backoff" || state == "stopping")
    return "\033[33m";  // yellow
  return nullptr;
}

// Takes a column from the widest column that can still shrink, until the
// line (cells two apart) fits `max` or no column can shrink.
void FitWidths(std::vector<size_t>* width, const std::vector<size_t>& floor, size_t max) {
  size_t total = std::accumulate(width->begin(), width->end(), size_t{0}) + 2 * (width->size() - 1);
  while (total > max) {
    size_t widest = width->size();
    for (size_t i = 0; i < width->size(); ++i)
      if ((*width)[i] > floor[i] && (widest == width->size() || (*width)[i] > (*width)[widest]))
        widest = i;
    if (widest == width->size()) return;
    --(*width)[widest];
    --total;
  }
}

}  // namespace

TableStyle StdoutStyle() {
  TableStyle style;
  if (::isatty(STDOUT_FILENO) != 1) return style;
  const char* no_color = std::getenv("NO_COLOR");
  const char* term = std::getenv("TERM");
  style.colour = !(no_color && *no_color) && !(term && std::string_view(term) == "dumb");
  struct winsize ws {};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
    style.max_width = ws.ws_col;
  } else if (const char* cols = std::getenv("COLUMNS"); cols && std::atoi(cols) > 0) {
    style.max_width = static_cast<size_t>(std::atoi(cols));
  } else {
    style.max_width = 80;
  }
  return style;
}

size_t DisplayWidth(std::string_view text) {
  if (IsAscii(text)) return text.size();
  size_t total = 0;
  ForEachChar(text, [&](std::string_view, size_t w) {
    total += w;
    return true;
  });
  return total;
}

std::string CutToWidth(std::string_view text, size_t width) {
  if (DisplayWidth(text) <= width) return std::string(text);
  std::string out;
  size_t used = 0;
  ForEachChar(text, [&](std::string_view ch, size_t w) {
    if (used + w > width - 1) return false;  // one column for the "…"
    out += ch;
    used += w;
    return true;
  });
  out += kEllipsis;
  return out;
}

void Table::Print(std::ostream& out, const TableStyle& style) const {
  const size_t n = headers_.size();
  std::vector<size_t> width(n), floor(n);
  for (size_t i = 0; i < n; ++i) {
    width[i] = DisplayWidth(headers_[i]);
    floor[i] = std::max(width[i], kMinColumn);
  }
  for (const auto& row : rows_)
    for (size_t i = 0; i < row.size() && i < n; ++i)
      width[i] = std::max(width[i], DisplayWidth(row[i]));
  for (size_t i = 0; i < n; ++i) {
    const bool cuttable =
        std::find(cuttable_.begin(), cuttable_.end(), headers_[i]) != cuttable_.end();
    floor[i] = cuttable ? std::min(floor[i], width[i]) : width[i];
  }
  if (style.max_width > 0 && n > 0) FitWidths(&width, floor, style.max_width);

  size_t state_column = n;
  for (size_t i = 0; i < n; ++i)
    if (headers_[i] == "STATE") state_column = i;

  auto line = [&](const std::vector<std::string>& cells, bool header) {
    std::string s;
    const size_t cols = std::min(cells.size(), n);
    for (size_t i = 0; i < cols; ++i) {
      // Cut only a cell that does not fit (most fit: no copy of them).
      const size_t w = DisplayWidth(cells[i]);
      std::string cut;
      std::string_view cell = cells[i];
      size_t cell_width = w;
      if (w > width[i]) {
        cut = CutToWidth(cells[i], width[i]);
        cell = cut;
        cell_width = DisplayWidth(cut);
      }
      const char* colour =
          style.colour && !header && i == state_column ? StateColour(cells[i]) : nullptr;
      if (colour) s += colour;
      s += cell;
      if (colour) s += "\033[0m";
      if (i + 1 < cols) s.append(width[i] - cell_width + 2, ' ');
    }
    out << s << '\n';
  };
  line(headers_, true);
  for (const auto& row : rows_) line(row, false);
}

void PrintFields(std::ostream& out,
                 const std::vector<std::pair<std::string, std::string>>& fields) {
  size_t w = 0;
  for (const auto& [k, v] : fields) w = std::max(w, DisplayWidth(k));
  for (const auto& [k, v] : fields)
    out << k << ':' << std::string(w - DisplayWidth(k) + 1, ' ') << v << '\n';
}

}  // namespace relsupd

#pragma once
// Text from apps (log lines, STATUS= texts) on the way to a terminal.
//
// An app writes whatever bytes it likes; printed raw to a terminal, an ESC
// or OSC sequence can move the cursor, rewrite earlier lines, retitle the
// window or, on some terminals, answer back into the reader's input. So,
// as journalctl and `systemctl status` do, `ctl logs` and `ctl ps` show
// control characters escaped when stdout is a terminal, and pass the text
// through unchanged to a pipe or a file (where a script wants the bytes)
// and in --json (JSON escapes them itself). Main thread of `relsupd ctl`.

#include <string>
#include <string_view>

namespace relsupd::cli {

// `text` with every control character written as a visible escape: C0
// (TAB excepted) and DEL as \a \b \e \f \n \r \v or \xNN, C1 (U+0080 to
// U+009F) as \uNNNN, and bytes that are not UTF-8 as \xNN. Printable text,
// UTF-8 included, is left alone.
std::string EscapeControls(std::string_view text);

// EscapeControls(text) when stdout is a terminal, else `text` unchanged.
std::string ForStdout(std::string_view text);
// For a message on stderr that may quote an app's output (an activation's
// "last lines"): each line of it escaped when stderr is a terminal, the
// newlines between them kept; else `text` unchanged.
std::string ForStderr(std::string_view text);
// The same, told whether the stream is a terminal (tests).
std::string EscapeLines(std::string_view text, bool terminal);

}  // namespace relsupd::cli

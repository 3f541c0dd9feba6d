#!/usr/bin/env python3
"""Checks relsupd's man pages against the binaries' --help texts.

    check_man.py [--daemon-config relsupd.yaml] RELSUPD RELSUPD_CORE MANDIR

MANDIR holds the pages as scdoc sources (NAME.SECTION.scd, rendered here
with scdoc) or already rendered (NAME.SECTION, roff). For each page:

- it must render without a warning: `groff -man -ww -z` prints nothing;
- relsupd-ctl(1): every verb and sub-verb of `relsupd ctl` (walked through
  the Subcommands: sections (by stage in `ctl --help`) of `ctl --help`, `ctl VERB --help`, ...; `ctl
  deploy --help` from relsupd-core, which handles deploy) is a term of its
  COMMANDS section, and every option of that verb is a term under it;
  ctl's own options (--socket, --json, --help, --version) are terms of the
  page;
- relsupd-build(1): every option of `relsupd-core build --help`;
- relsupd(8): every option of `relsupd daemon --help`, and every SIGNAME
  that help (and `ctl daemon-reexec --help`) names;
- relsupd.yaml(5), with --daemon-config: every key of the shipped daemon
  config, commented-out ones included, is a term of the page.

An option counts by its long name, or its short name when it has no long
one, and only as a term of a definition list ("-n, --lines N" followed by
its indented description), not as a word in prose or a synopsis. Prints what is missing and exits 1; exits 0 when nothing is.
Needs python3, groff (and scdoc for sources). Standard library only.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

PAGES = ["relsupd-ctl.1", "relsupd-build.1", "relsupd.8", "relsupd.yaml.5",
         "relsupd-app.5"]
EVERYWHERE = {"--help", "--version"}  # every verb takes them; checked once


def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, **kw)


# ---- --help texts (CLI11's layout) ------------------------------------------

def help_text(binary, args):
    r = run([binary] + args + ["--help"])
    if r.returncode != 0:
        raise SystemExit("check_man: '%s' exited %d: %s" %
                         (" ".join([binary] + args + ["--help"]),
                          r.returncode, r.stderr.strip()))
    return r.stdout


# The headings `relsupd ctl --help` lists its verbs under (cli/ctl.cc).
STAGE_HEADINGS = r"Build \(.*\)|Release \(.*\)|Run \(.*\)|Inspect|Daemon|Help|Other"


def sections(text):
    """{'Options': [item lines], 'Subcommands': [...], ...}."""
    out, current = {}, None
    for line in text.splitlines():
        m = re.match(r"^(Options|Subcommands|Positionals|%s):\s*$" % STAGE_HEADINGS, line)
        if m:
            name = m.group(1)
            if name not in ("Options", "Positionals"):
                name = "Subcommands"  # ctl lists its verbs by stage
            current = out.setdefault(name, [])
        elif current is not None and re.match(r"^  \S", line):
            current.append(line[2:])
        elif current is not None and re.match(r"^\s{3,}\S", line):
            continue  # a description continued on its own line
        else:
            current = None
    return out


def option_names(text):
    """The options of one help text: long names, or the short one alone."""
    names = set()
    for item in sections(text).get("Options", []):
        spelled = item.split()[0].split(",")
        longs = [n for n in spelled if n.startswith("--")]
        names.update(longs or [n for n in spelled if n.startswith("-")])
    return names


def subcommands(text):
    return [item.split()[0] for item in sections(text).get("Subcommands", [])]


def walk_ctl(relsupd, core):
    """{('app', 'create'): {options}, ...}; parents map to their own options."""
    verbs = {}

    def visit(path, depth):
        binary = core if path[:1] == ["deploy"] else relsupd
        text = help_text(binary, ["ctl"] + path)
        verbs[tuple(path)] = {"options": option_names(text),
                              "children": subcommands(text)}
        if depth < 3:
            for sub in subcommands(text):
                visit(path + [sub], depth + 1)

    visit([], 0)
    return verbs


# ---- pages ------------------------------------------------------------------

def find_page(mandir, name, tmp, problems):
    """The roff of page `name` (rendering its .scd if that is what there is)."""
    src = os.path.join(mandir, name + ".scd")
    if os.path.exists(src):
        if shutil.which("scdoc") is None:
            raise SystemExit("check_man: scdoc is needed to render " + src)
        with open(src, encoding="utf-8") as f:
            source = f.read()
        check_source(src, source, problems)
        r = run(["scdoc"], input=source)
        if r.returncode != 0:
            problems.append("%s: scdoc failed: %s" % (src, r.stderr.strip()))
            return None
        out = os.path.join(tmp, name)
        with open(out, "w", encoding="utf-8") as f:
            f.write(r.stdout)
        return out
    for candidate in (os.path.join(mandir, name), os.path.join(mandir, name + ".roff")):
        if os.path.exists(candidate):
            return candidate
    problems.append("%s: no %s.scd or %s in it" % (mandir, name, name))
    return None


def check_source(path, source, problems):
    """What scdoc accepts but renders wrong: a line starting with a dot that
    is no list item (scdoc 1.11 turns '../x' into './x')."""
    in_code = False
    for n, line in enumerate(source.splitlines(), 1):
        if line.lstrip("\t").startswith("```"):
            in_code = not in_code
        elif not in_code and re.match(r"^\t*\.[^ ]", line):
            problems.append("%s:%d: a line starting with '.' (scdoc mangles it): %s"
                            % (path, n, line.strip()))


def groff_warnings(roff, problems):
    r = run(["groff", "-man", "-ww", "-z", roff])
    said = (r.stdout + r.stderr).strip()
    if r.returncode != 0 or said:
        problems.append("%s: groff -man -ww -z: %s" % (roff, said or "exit %d" % r.returncode))


def plain_text(roff):
    """The page as plain text, one paragraph per line (no wrapping, no
    hyphenation), so that words and options can be looked up."""
    env = dict(os.environ, GROFF_NO_SGR="1")
    r = run(["groff", "-man", "-Tascii", "-rLL=4000n", "-rHY=0", "-P-cbou", roff], env=env)
    return re.sub(r".\x08", "", r.stdout)


def has_term(lines, word):
    """Whether `word` (--lines, SIGHUP) is a term of a definition list in
    `lines`: a line that starts with it, or with a comma-separated list of
    such words that holds it ("-n, --lines N", "SIGTERM, SIGINT"), and is
    followed by a more deeply indented description. A mention in prose, or
    only in a verb's synopsis, does not count."""
    for i, line in enumerate(lines):
        s = line.strip()
        if not s:
            continue
        rest = [l for l in lines[i + 1:] if l.strip()]
        if not rest or indent(rest[0]) <= indent(line):
            continue
        for n, part in enumerate(s.split(", ")):
            tok = part.split()[0] if part.split() else ""
            if tok == word:
                return True
            if not re.match(r"^(-|SIG)", tok):
                break
    return False


def section_lines(text, title):
    lines, inside = [], False
    for line in text.splitlines():
        if line and not line[0].isspace():
            inside = line.strip() == title
        elif inside:
            lines.append(line)
    return lines


def indent(line):
    return len(line) - len(line.lstrip(" "))


def check_ctl(text, verbs, problems):
    page = "relsupd-ctl(1)"
    root = verbs[()]
    all_lines = text.splitlines()
    for opt in sorted(root["options"]):
        if not has_term(all_lines, opt):
            problems.append("%s: ctl option %s is missing" % (page, opt))
    lines = section_lines(text, "COMMANDS")
    if not lines:
        problems.append("%s: no COMMANDS section" % page)
        return
    paths = sorted((" ".join(p) for p in verbs if p), key=len, reverse=True)

    def verb_at(line):
        s = line.strip()
        for p in paths:
            if s == p or s.startswith(p + " "):
                return p
        return None

    term_indents = [indent(l) for l in lines if verb_at(l)]
    if not term_indents:
        problems.append("%s: COMMANDS names no verb" % page)
        return
    term = min(term_indents)
    # Segments: each term line at the term indent up to the next line at it
    # (or less: a sub-heading).
    segments, current = {}, None
    for line in lines:
        if line.strip() and indent(line) <= term:
            current = verb_at(line) if indent(line) == term else None
            if current:
                segments.setdefault(current, [])
                segments[current].append(line)
                continue
        if current:
            segments[current].append(line)
    for path, info in sorted(verbs.items()):
        if not path:
            continue
        name = " ".join(path)
        if info["children"]:
            continue  # a group: documented through its sub-verbs
        if name not in segments:
            problems.append("%s: verb '%s' has no term in COMMANDS" % (page, name))
            continue
        body = segments[name]
        for opt in sorted(info["options"] - EVERYWHERE):
            if not has_term(body, opt):
                problems.append("%s: option %s of '%s' is missing under it" % (page, opt, name))
    for opt in sorted(EVERYWHERE):
        if not has_term(all_lines, opt):
            problems.append("%s: %s is missing" % (page, opt))


def check_options(page, text, options, problems, what):
    for opt in sorted(options):
        if not has_term(text.splitlines(), opt):
            problems.append("%s: option %s of '%s' is missing" % (page, opt, what))


def config_keys(path):
    keys = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^#?\s?([a-z_]+):(\s|$)", line)
            if m and m.group(1) not in keys:
                keys.append(m.group(1))
    return keys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("relsupd")
    ap.add_argument("relsupd_core")
    ap.add_argument("mandir")
    ap.add_argument("--daemon-config", help="the shipped relsupd.yaml; its keys must be in relsupd.yaml(5)")
    a = ap.parse_args()
    if shutil.which("groff") is None:
        raise SystemExit("check_man: groff is needed")

    problems = []
    verbs = walk_ctl(a.relsupd, a.relsupd_core)
    core_verbs = subcommands(help_text(a.relsupd_core, ["ctl"]))
    if sorted(core_verbs) != sorted(verbs[()]["children"]):
        problems.append("relsupd ctl and relsupd-core ctl list other verbs: %s vs %s"
                        % (sorted(verbs[()]["children"]), sorted(core_verbs)))
    build_help = help_text(a.relsupd_core, ["build"])
    daemon_help = help_text(a.relsupd, ["daemon"])
    reexec_help = help_text(a.relsupd, ["ctl", "daemon-reexec"])
    signals = set(re.findall(r"\bSIG[A-Z0-9]+\b", daemon_help + reexec_help))

    with tempfile.TemporaryDirectory() as tmp:
        texts = {}
        for name in PAGES:
            roff = find_page(a.mandir, name, tmp, problems)
            if roff:
                groff_warnings(roff, problems)
                texts[name] = plain_text(roff)
        # Any other page there is held to the groff check too.
        for f in sorted(os.listdir(a.mandir)):
            if f.endswith(".scd") and f[:-4] not in PAGES:
                roff = find_page(a.mandir, f[:-4], tmp, problems)
                if roff:
                    groff_warnings(roff, problems)

    if "relsupd-ctl.1" in texts:
        check_ctl(texts["relsupd-ctl.1"], verbs, problems)
    if "relsupd-build.1" in texts:
        check_options("relsupd-build(1)", texts["relsupd-build.1"],
                      option_names(build_help), problems, "relsupd build")
    if "relsupd.8" in texts:
        text = texts["relsupd.8"]
        check_options("relsupd(8)", text, option_names(daemon_help), problems, "relsupd daemon")
        for sig in sorted(signals):
            if not has_term(text.splitlines(), sig):
                problems.append("relsupd(8): signal %s is missing" % sig)
    if a.daemon_config and "relsupd.yaml.5" in texts:
        terms = {l.strip() for l in texts["relsupd.yaml.5"].splitlines()}
        for key in config_keys(a.daemon_config):
            if key not in terms:
                problems.append("relsupd.yaml(5): key %s of %s has no term"
                                % (key, a.daemon_config))

    if problems:
        print("check_man: %d problem(s):" % len(problems))
        for p in problems:
            print("  " + p)
        return 1
    leaves = [p for p, i in verbs.items() if p and not i["children"]]
    n_opts = sum(len(verbs[p]["options"] - EVERYWHERE) for p in leaves)
    print("check_man: ok: %d pages, %d ctl verbs with %d options, %d build and %d daemon "
          "options, %d signals" % (len(texts), len(leaves), n_opts,
                                   len(option_names(build_help)),
                                   len(option_names(daemon_help)), len(signals)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

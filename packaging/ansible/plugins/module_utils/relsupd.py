# -*- coding: utf-8 -*-
# The one place the relsupd.core modules talk to relsupd: runs
# `relsupd ctl --json [--socket SOCKET] ...` through module.run_command,
# parses the one JSON document it prints and turns the CLI's error document
# ({"error": {"code", "exit", "status", "message"}}) into fail_json with the
# daemon's own message. Modules never parse the human output.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

# The options every module takes, merged into its argument_spec.
COMMON_ARGS = dict(
    socket=dict(type='path'),
    relsupd_bin=dict(type='str', default='relsupd'),
)

# Exit codes of `relsupd ctl` (relsupd ctl --help).
EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


class RelsupdError(Exception):
    """A `relsupd ctl` call that did not succeed.

    message is the daemon's (or the CLI's) own text; code is "refused",
    "usage", "unreachable" or "output" (the CLI printed no JSON); result is
    the parsed document where there was one (a failed activation prints its
    outcome, not an error document).
    """

    def __init__(self, message, code, rc, cmd, result=None, stderr=''):
        super(RelsupdError, self).__init__(message)
        self.message = message
        self.code = code
        self.rc = rc
        self.cmd = cmd
        self.result = result
        self.stderr = stderr


class Relsupd(object):
    """Runs `relsupd ctl --json` for one module invocation."""

    def __init__(self, module):
        self.module = module
        self.bin = module.params['relsupd_bin']
        self.socket = module.params.get('socket')
        path = module.get_bin_path(self.bin, required=False)
        if path is None:
            module.fail_json(
                msg="relsupd_bin '%s' was not found on the target (install "
                    "the relsupd package or set relsupd_bin)" % self.bin)
        self.bin = path

    def ctl_argv(self, *args):
        argv = [self.bin, 'ctl', '--json']
        if self.socket:
            argv += ['--socket', self.socket]
        return argv + [str(a) for a in args]

    def ctl(self, *args, **kwargs):
        """Runs `relsupd ctl --json ARGS...` and returns the parsed result.

        Raises RelsupdError on a non-zero exit. allow_fail_result=True keeps
        a non-error document printed with exit 1 (activate's failed outcome)
        in the exception's result.
        """
        argv = self.ctl_argv(*args)
        rc, out, err = self.module.run_command(argv)
        doc = None
        text = out.strip()
        if text:
            try:
                doc = json.loads(text)
            except ValueError:
                doc = None
        if rc == EXIT_OK and doc is not None and not _is_error(doc):
            return doc
        if _is_error(doc):
            e = doc['error']
            raise RelsupdError(e.get('message') or 'relsupd ctl failed',
                               e.get('code') or 'refused', rc, argv,
                               result=doc, stderr=err)
        if doc is not None:
            # Exit 1 with a result document: a failed activation or deploy.
            msg = doc.get('message') if isinstance(doc, dict) else None
            raise RelsupdError(msg or 'relsupd ctl exited %d' % rc,
                               'refused', rc, argv, result=doc, stderr=err)
        raise RelsupdError(
            'relsupd ctl printed no JSON (exit %d): %s' % (rc, (err or out).strip()),
            'output', rc, argv, stderr=err)

    def run(self, argv):
        """Runs a relsupd command that is not `ctl` (e.g. `relsupd build`)."""
        argv = [self.bin] + [str(a) for a in argv]
        rc, out, err = self.module.run_command(argv)
        if rc != 0:
            raise RelsupdError(
                '%s failed (exit %d): %s' % (' '.join(argv[1:3]), rc,
                                            (err or out).strip()),
                'refused', rc, argv, stderr=err)
        return out

    def fail(self, error, **extra):
        """fail_json with the daemon's message and what was run."""
        self.module.fail_json(msg=error.message, code=error.code, rc=error.rc,
                              cmd=error.cmd, stderr=error.stderr, **extra)

    def app_exists(self, name):
        """The app's settings (app show), or None when there is no such app."""
        try:
            return self.ctl('app', 'show', name)
        except RelsupdError as e:
            if e.code == 'refused' and _is_not_found(e):
                return None
            raise


def _is_error(doc):
    return isinstance(doc, dict) and isinstance(doc.get('error'), dict)


def _is_not_found(error):
    doc = error.result if isinstance(error.result, dict) else {}
    return doc.get('error', {}).get('status') == 'not found'


def config_value(value):
    """A config value as relsupd stores it: a string; YAML booleans become
    'true'/'false' rather than Python's 'True'/'False'."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def set_args(config):
    """--set K=V arguments for a config dict, in a stable order."""
    args = []
    for key in sorted(config or {}):
        args += ['--set', '%s=%s' % (key, config_value(config[key]))]
    return args

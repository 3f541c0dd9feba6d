# -*- coding: utf-8 -*-
# The options every relsupd.core module takes (module_utils/relsupd.py's
# COMMON_ARGS), documented once.
from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r'''
options:
  socket:
    description:
      - The daemon's control socket on the target.
      - Left out, C(relsupd ctl)'s default (C($RELSUPD_SOCKET) or
        C(/run/relsupd/relsupd.sock)).
    type: path
  relsupd_bin:
    description: The C(relsupd) command on the target (a name looked up in PATH, or a path).
    type: str
    default: relsupd
'''

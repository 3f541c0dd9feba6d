#!/usr/bin/python
# -*- coding: utf-8 -*-
# relsupd.core.app: an app's settings, declaratively, through
# `relsupd ctl app apply` (and `app apply --check` in check mode).

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: app
short_description: Create or update a relsupd app
version_added: "0.1.0"
description:
  - Makes sure an app exists on the host's relsupd daemon with the given
    settings, through C(relsupd ctl app apply) with a spec file it writes
    to a temporary file.
  - Options left out keep the app's current value (for a new app, relsupd's
    default), so a task names only what it manages.
  - In check mode it runs C(relsupd ctl app apply --check), which reports
    what would change and changes nothing. With C(--diff) it shows the
    settings before and after.
  - I(state=absent) deletes the app with C(relsupd ctl app delete). Its
    releases, builds and logs go, and its history stays in the ledger. The
    daemon refuses while the app's processes run, unless I(stop=true); so
    does check mode (C(app delete --check)), with the same reason.
    An app that does not exist is C(ok).
options:
  name:
    description: The app's name (C([a-z0-9][a-z0-9-]{0,62})).
    type: str
    required: true
  user:
    description:
      - User the app's processes run as, a name or a uid.
      - Left out for a new app, relsupd picks a uid of the app's own from
        its C(app_uid_range) when the daemon runs as root.
    type: str
  group:
    description:
      - Group to run as. Left out, the user's primary group, or the
        app's current group when I(user) is left out too.
    type: str
  sockets:
    description:
      - Daemon-held sockets, a name to an address
        (C(tcp://HOST:PORT) or C(unix:/PATH)), passed to the app's
        processes as C(LISTEN_FDS).
      - The dict replaces the app's sockets as a whole.
    type: dict
  strategy:
    description: Activation strategy.
    type: str
    choices: [start-first, stop-first]
  deadline:
    description:
      - Activation deadline, e.g. C(60s) or C(2m). A release that is not
        ready by then is rolled back (with I(auto_rollback)).
    type: str
  keep:
    description: Activated releases to keep (1 to 1000).
    type: int
  auto_rollback:
    description: Whether the daemon rolls back by itself when an activation fails.
    type: bool
  state:
    description:
      - C(present) creates or updates the app.
      - C(absent) deletes the app (C(relsupd ctl app delete)).
    type: str
    choices: [present, absent]
    default: present
  stop:
    description:
      - With I(state=absent), stop the app's processes first. Without it, a
        running app is not deleted and the task fails with the daemon's
        reason.
    type: bool
    default: false
notes:
  - Supports check mode and diff mode.
  - Runs on the target host; needs C(relsupd) there and the right to change
    apps (root or the daemon's admin group).
author:
  - relsupd contributors
extends_documentation_fragment:
  - relsupd.core.common
'''

EXAMPLES = r'''
- name: The shop app, serving on a daemon-held socket
  relsupd.core.app:
    name: shop
    sockets:
      http: tcp://0.0.0.0:8080
    strategy: start-first
    deadline: 60s
    keep: 5

- name: Gone, with its processes stopped first
  relsupd.core.app:
    name: old-shop
    state: absent
    stop: true

- name: Run as an existing user
  relsupd.core.app:
    name: blog
    user: blog
    group: www-data
'''

RETURN = r'''
name:
  description: The app's name.
  returned: always
  type: str
  sample: shop
exists:
  description: Whether the app existed before this task.
  returned: always
  type: bool
  sample: true
changes:
  description: What changed (or would change in check mode), a field to [old, new], as relsupd's C(app apply --check --json) reports it.
  returned: when state is present
  type: dict
  sample: {"activation_deadline_ms": [60000, 30000]}
app:
  description: The app's settings after the task (in check mode, as they would be).
  returned: when state is present
  type: dict
  sample:
    name: shop
    user: ""
    uid: 70000
    gid: 70000
    group: ""
    dynamic_user: true
    keep_releases: 5
    sockets: {"http": "tcp://0.0.0.0:8080"}
    strategy: start-first
    activation_deadline_ms: 60000
    auto_rollback: true
'''

import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.relsupd.core.plugins.module_utils.relsupd import (
    COMMON_ARGS, Relsupd, RelsupdError)


def build_spec(params, current):
    """The spec to apply: the options given, the app's current settings for
    the others (app apply resets a key it is not given to the default)."""
    spec = {'name': params['name']}
    if current:
        if not current.get('dynamic_user') and params['user'] is None:
            spec['user'] = current.get('user') or str(current.get('uid'))
            if params['group'] is None and current.get('group'):
                spec['group'] = current['group']
        spec['keep_releases'] = current.get('keep_releases')
        spec['sockets'] = current.get('sockets') or {}
        spec['strategy'] = current.get('strategy')
        if current.get('activation_deadline_ms') is not None:
            spec['activation_deadline'] = '%dms' % current['activation_deadline_ms']
        spec['auto_rollback'] = current.get('auto_rollback')
    given = {
        'user': params['user'],
        'group': params['group'],
        'keep_releases': params['keep'],
        'sockets': params['sockets'],
        'strategy': params['strategy'],
        'activation_deadline': params['deadline'],
        'auto_rollback': params['auto_rollback'],
    }
    for key, value in given.items():
        if value is not None:
            spec[key] = value
    if 'sockets' in spec:
        spec['sockets'] = dict((str(k), str(v)) for k, v in spec['sockets'].items())
    return dict((k, v) for k, v in spec.items() if v is not None)


def apply(rs, spec, check):
    """Runs `app apply` on a temporary spec file (JSON, which is YAML)."""
    fd, path = tempfile.mkstemp(prefix='relsupd-app-', suffix='.yaml')
    try:
        with os.fdopen(fd, 'w') as f:
            json.dump(spec, f, indent=2, sort_keys=True)
            f.write('\n')
        args = ['app', 'apply', path]
        if check:
            args.append('--check')
        result = rs.ctl(*args)
        if check and result.get('check') is not True:
            # A daemon older than --check applied the spec instead.
            raise RelsupdError(
                "the relsupd daemon does not know 'app apply --check' (an older "
                "version) and may have applied the spec; upgrade it and compare "
                "with 'relsupd ctl app show %s'" % spec.get('name'),
                'refused', 0, args, result)
        return result
    finally:
        os.unlink(path)


def main():
    argument_spec = dict(
        name=dict(type='str', required=True),
        user=dict(type='str'),
        group=dict(type='str'),
        sockets=dict(type='dict'),
        strategy=dict(type='str', choices=['start-first', 'stop-first']),
        deadline=dict(type='str'),
        keep=dict(type='int'),
        auto_rollback=dict(type='bool'),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        stop=dict(type='bool', default=False),
    )
    argument_spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    rs = Relsupd(module)
    name = module.params['name']

    try:
        current = rs.app_exists(name)
    except RelsupdError as e:
        rs.fail(e)

    if module.params['state'] == 'absent':
        if current is None:
            module.exit_json(changed=False, name=name, exists=False)
        # Check mode asks the daemon (app delete --check): a delete it would
        # refuse fails there too, with its reason.
        args = ['app', 'delete', name]
        if module.params['stop']:
            args.append('--stop')
        if module.check_mode:
            args.append('--check')
        try:
            done = rs.ctl(*args)
        except RelsupdError as e:
            rs.fail(e, name=name, exists=True)
        if module.check_mode and done.get('check') is not True:
            module.fail_json(msg="the relsupd daemon did not answer 'app delete --check' as a "
                                 "check (an older version?)", name=name, exists=True)
        result = dict(changed=True, name=name, exists=True)
        if module._diff:
            result['diff'] = dict(before=current, after={})
        module.exit_json(**result)

    spec = build_spec(module.params, current)
    try:
        planned = apply(rs, spec, check=True)
        if planned.get('changed') and not module.check_mode:
            done = apply(rs, spec, check=False)
            app = done.get('app', planned.get('app'))
        else:
            app = planned.get('app')
    except RelsupdError as e:
        rs.fail(e, name=name)

    changes = planned.get('diff') or {}
    result = dict(changed=bool(planned.get('changed')), name=name,
                  exists=current is not None, changes=changes, app=app)
    if module._diff:
        result['diff'] = dict(
            before=dict((k, v[0]) for k, v in changes.items()) if current else {},
            after=dict((k, v[1]) for k, v in changes.items()))
    module.exit_json(**result)


if __name__ == '__main__':
    main()

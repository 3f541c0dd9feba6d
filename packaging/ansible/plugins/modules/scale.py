#!/usr/bin/python
# -*- coding: utf-8 -*-
# relsupd.core.scale: how many instances of each process type run
# (`relsupd ctl scale`), changed only where a count differs.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: scale
short_description: Set how many instances of each relsupd process type run
version_added: "0.1.0"
description:
  - Sets the app's formation with C(relsupd ctl scale APP TYPE=N...). The
    formation is recorded in relsupd's ledger and survives restarts and
    later releases.
  - The current counts are the instances of the live release that
    C(relsupd ctl status) lists, per process type; types left out of
    I(formation) are not touched. Only when a count differs is C(scale) run
    (C(changed=true)).
  - In check mode it only compares.
options:
  app:
    description: The app (it must have a live release).
    type: str
    required: true
  formation:
    description: 'Process type to instance count, e.g. C({web: 2, worker: 1}); 0 stops a type.'
    type: dict
    required: true
notes:
  - Supports check mode.
  - Scaling does not wait for new instances to be ready; see
    M(relsupd.core.facts) for their state.
author:
  - relsupd contributors
extends_documentation_fragment:
  - relsupd.core.common
'''

EXAMPLES = r'''
- name: Two web instances and a worker
  relsupd.core.scale:
    app: shop
    formation:
      web: 2
      worker: 1
'''

RETURN = r'''
before:
  description: Instances per process type of the live release before the task (types in I(formation) only).
  returned: always
  type: dict
  sample: {"web": 1, "worker": 0}
scale:
  description: The counts set (as relsupd reports them; in check mode, as they would be).
  returned: always
  type: dict
  sample: {"web": 2, "worker": 1}
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.relsupd.core.plugins.module_utils.relsupd import (
    COMMON_ARGS, Relsupd, RelsupdError)


def current_counts(status):
    """Instances of the live release per type, from `status`; an instance
    on its way out (stopping) is not counted."""
    counts = {}
    for p in status.get('processes') or []:
        if p.get('release') != status.get('active') or p.get('state') == 'stopping':
            continue
        counts[p.get('type')] = counts.get(p.get('type'), 0) + 1
    return counts


def main():
    argument_spec = dict(
        app=dict(type='str', required=True),
        formation=dict(type='dict', required=True),
    )
    argument_spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    rs = Relsupd(module)
    app = module.params['app']
    wanted = {}
    for ptype, count in module.params['formation'].items():
        try:
            wanted[str(ptype)] = int(count)
        except (TypeError, ValueError):
            module.fail_json(msg="formation: count of '%s' is not a number: %r"
                             % (ptype, count))
        if wanted[str(ptype)] < 0:
            module.fail_json(msg="formation: count of '%s' is negative" % ptype)
    try:
        status = rs.ctl('status', app)
        counts = current_counts(status)
        before = dict((t, counts.get(t, 0)) for t in wanted)
        changed = before != wanted
        if not changed or module.check_mode:
            module.exit_json(changed=changed, before=before, scale=wanted)
        done = rs.ctl('scale', app, *['%s=%d' % (t, n) for t, n in sorted(wanted.items())])
    except RelsupdError as e:
        rs.fail(e, app=app)
    # What the daemon did but says will likely not work (a type that binds
    # its PORT itself, scaled past 1) becomes a task warning.
    for warning in done.get('warnings') or []:
        module.warn(str(warning))
    module.exit_json(changed=True, before=before, scale=done.get('scale', wanted))


if __name__ == '__main__':
    main()

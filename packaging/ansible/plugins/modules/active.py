#!/usr/bin/python
# -*- coding: utf-8 -*-
# relsupd.core.active: a release is the live one (`relsupd ctl activate`),
# with relsupd's own verification and auto-rollback doing the host's part.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: active
short_description: Make a relsupd release the live one
version_added: "0.1.0"
description:
  - Makes sure I(release) is the live release of I(app), with
    C(relsupd ctl activate), which switches, starts the release's processes,
    waits until they are ready and only then stops the old ones
    (C(start-first)).
  - When the release is live already nothing is switched and the task
    reports C(ok) (relsupd starts any failed instance of it again).
  - When the new release is not ready by the app's activation deadline, or
    crash-loops, the daemon rolls back to the release that was live by
    itself (auto-rollback). The task then fails with the daemon's reason in
    C(msg) and returns the release live now in C(live).
  - In check mode it compares the live release (C(relsupd ctl status)) with
    I(release) and changes nothing.
options:
  app:
    description: The app.
    type: str
    required: true
  release:
    description:
      - The release to make live, C(vN), or its content digest (or a unique
        prefix of it, as M(relsupd.core.release) returns in C(digest)).
    type: str
    required: true
  strategy:
    description: Activation strategy for this switch; left out, the app's.
    type: str
    choices: [start-first, stop-first]
notes:
  - Supports check mode.
  - The task takes as long as the activation (at most the app's activation
    deadline).
author:
  - relsupd contributors
extends_documentation_fragment:
  - relsupd.core.common
'''

EXAMPLES = r'''
- name: Put the release made before live
  relsupd.core.active:
    app: shop
    release: "{{ shop_release.release }}"

- name: Roll back to v3 (an activation like any other)
  relsupd.core.active:
    app: shop
    release: v3
    strategy: stop-first
'''

RETURN = r'''
release:
  description: The release asked for, as C(vN).
  returned: always
  type: str
  sample: v4
previous:
  description: The release that was live before the task (null when none was).
  returned: always
  type: str
  sample: v3
live:
  description: The release live after the task; after a failed activation, the release the daemon went back to.
  returned: always
  type: str
  sample: v4
live_ready:
  description: Whether the live release's processes are ready.
  returned: when an activation ran
  type: bool
note:
  description: relsupd's note, e.g. that the release was live already.
  returned: when an activation ran
  type: str
rolled_back:
  description: True when the activation failed and the daemon rolled back by itself.
  returned: on failure
  type: bool
'''

import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.relsupd.core.plugins.module_utils.relsupd import (
    COMMON_ARGS, Relsupd, RelsupdError)


def resolve(rs, module, app, wanted):
    """vN for a vN or a digest (prefix)."""
    if re.match(r'^v[0-9]+$', wanted):
        return wanted
    if not re.match(r'^(sha256:)?[0-9a-f]{6,64}$', wanted):
        module.fail_json(msg="release '%s' is neither vN nor a digest" % wanted)
    digest = wanted.split(':', 1)[-1]
    found = [r['release'] for r in rs.ctl('releases', app)
             if (r.get('digest') or '').startswith(digest)]
    if not found:
        module.fail_json(msg="app '%s' has no release with digest %s" % (app, wanted))
    if len(found) > 1:
        module.fail_json(msg="digest %s names several releases of '%s': %s"
                         % (wanted, app, ', '.join(found)))
    return found[0]


def main():
    argument_spec = dict(
        app=dict(type='str', required=True),
        release=dict(type='str', required=True),
        strategy=dict(type='str', choices=['start-first', 'stop-first']),
    )
    argument_spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    rs = Relsupd(module)
    app = module.params['app']
    release = module.params['release']
    previous = None
    try:
        release = resolve(rs, module, app, module.params['release'])
        status = rs.ctl('status', app)
        previous = status.get('active')
        if module.check_mode:
            if previous != release:
                # Fails here as the real run would, on a release that is not there.
                rs.ctl('release', 'show', app, release)
            module.exit_json(changed=previous != release, release=release,
                             previous=previous, live=release)
        args = ['activate', app, release]
        if module.params['strategy']:
            args += ['--strategy', module.params['strategy']]
        outcome = rs.ctl(*args)
    except RelsupdError as e:
        doc = e.result if isinstance(e.result, dict) else {}
        if 'live' in doc and 'ok' in doc:
            # The switch failed and the daemon went back by itself.
            module.fail_json(msg=e.message, release=release, previous=previous,
                             live=doc.get('live'), live_ready=doc.get('live_ready'),
                             rolled_back=doc.get('live') != release, changed=False)
        rs.fail(e, app=app, release=release)

    module.exit_json(changed=bool(outcome.get('changed', previous != release)),
                     release=release, previous=previous, live=outcome.get('live'),
                     live_ready=outcome.get('live_ready'), note=outcome.get('note') or '')


if __name__ == '__main__':
    main()

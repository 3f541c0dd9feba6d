#!/usr/bin/python
# -*- coding: utf-8 -*-
# relsupd.core.facts: what the host's daemon runs, as facts (read only).

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: facts
short_description: Gather relsupd apps, releases and instances as facts
version_added: "0.1.0"
description:
  - Reads the host's relsupd daemon (C(relsupd ctl info), C(status),
    C(releases) and C(ps)) and returns it as the C(relsupd) fact.
  - Changes nothing; runs in check mode too.
options:
  app:
    description: Only this app; left out, every app on the host.
    type: str
notes:
  - Supports check mode.
  - Config values are never read; a release lists its config keys only.
author:
  - relsupd contributors
extends_documentation_fragment:
  - relsupd.core.common
'''

EXAMPLES = r'''
- name: What runs here
  relsupd.core.facts:
    app: shop

- name: Remember the live release
  ansible.builtin.set_fact:
    shop_before: "{{ ansible_facts.relsupd.apps.shop.active }}"
'''

RETURN = r'''
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: complex
  contains:
    relsupd:
      description: The daemon and its apps.
      type: complex
      contains:
        daemon:
          description: C(relsupd ctl info) (version, pid, state dir, socket, ...).
          type: dict
        apps:
          description:
            - App name to its state, each with C(active) and C(previous)
              (C(vN) or null), C(last_switch) (the outcome of the last
              activation), C(switch) (one in progress), C(stopped),
              C(settings) (C(relsupd ctl app show)), C(releases) (as
              C(relsupd ctl releases)) and C(instances) (as C(relsupd ctl ps)).
          type: dict
          sample:
            shop:
              active: v2
              previous: v1
              stopped: false
              releases: [{"release": "v1", "digest": "c312...", "active": false}]
              instances: [{"process": "web.1", "state": "ready", "release": "v2"}]
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.relsupd.core.plugins.module_utils.relsupd import (
    COMMON_ARGS, Relsupd, RelsupdError)


def app_facts(rs, name):
    status = rs.ctl('status', name)
    facts = dict((k, v) for k, v in status.items() if k != 'processes')
    facts['settings'] = rs.ctl('app', 'show', name)
    facts['releases'] = rs.ctl('releases', name)
    facts['instances'] = rs.ctl('ps', name)
    return facts


def main():
    argument_spec = dict(app=dict(type='str'))
    argument_spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    rs = Relsupd(module)
    try:
        daemon = rs.ctl('info')
        if module.params['app']:
            names = [module.params['app']]
        else:
            names = [a['name'] for a in rs.ctl('app', 'list')]
        apps = dict((n, app_facts(rs, n)) for n in names)
    except RelsupdError as e:
        rs.fail(e)
    module.exit_json(changed=False,
                     ansible_facts=dict(relsupd=dict(daemon=daemon, apps=apps)))


if __name__ == '__main__':
    main()

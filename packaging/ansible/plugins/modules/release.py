#!/usr/bin/python
# -*- coding: utf-8 -*-
# relsupd.core.release: a release of an artifact (or a source dir built
# here) with a config, made only when no kept release already has that
# build and that config (`relsupd ctl release create --reuse`).

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: release
short_description: Make a relsupd release of an artifact and a config, idempotently
version_added: "0.1.0"
description:
  - Imports an artifact that is on the target (I(artifact)), or first builds
    a source directory on the target with C(relsupd build) (I(src)), and
    makes a release of it with C(relsupd ctl release create --reuse).
  - The release's config is the live release's config (the newest release's
    while none was ever live) with I(config) added on top, as
    C(relsupd ctl release create --set) does.
  - When a kept release already has the same build and the same resulting
    config, that release is returned and nothing is made (C(changed=false)).
    The release is not activated; use M(relsupd.core.active) for that.
  - In check mode nothing is imported or made. The module computes the
    artifact's sha256 and the resulting config and looks for a kept release
    that matches (C(relsupd ctl releases) and C(relsupd ctl config show
    --reveal)); C(changed) says whether a new release would be made. With
    I(src), the source is still built into a temporary file (it changes
    nothing on the daemon) to know its digest.
options:
  app:
    description: The app (it must exist; see M(relsupd.core.app)).
    type: str
    required: true
  artifact:
    description:
      - Path on the target of an artifact (tar, tar.gz or tar.zst), e.g.
        one made by C(relsupd build) in CI and copied to the host.
      - Exactly one of I(artifact) and I(src) is required.
    type: path
  src:
    description:
      - Path on the target of a source directory with a C(relsupd.yaml) or a
        C(Procfile); it is built with C(relsupd build) into a temporary
        artifact, which is imported and removed.
    type: path
  config:
    description:
      - Config to add to the live release's, a name to a value. Values are
        passed as strings (YAML booleans as C(true)/C(false)).
      - Keys not named keep the live release's value; this module removes
        no key.
    type: dict
    default: {}
notes:
  - Supports check mode.
  - Config values are secrets as far as relsupd is concerned; the module
    never returns them.
author:
  - relsupd contributors
extends_documentation_fragment:
  - relsupd.core.common
'''

EXAMPLES = r'''
- name: Copy the artifact CI built
  ansible.builtin.copy:
    src: dist/shop.tar.gz
    dest: /var/tmp/shop.tar.gz
    mode: "0644"

- name: Make the release (or find the one made before)
  relsupd.core.release:
    app: shop
    artifact: /var/tmp/shop.tar.gz
    config:
      DATABASE_URL: postgres://db.internal/shop
      WORKERS: 4
  register: shop_release

- name: Build a checkout on the host and release it
  relsupd.core.release:
    app: blog
    src: /srv/blog/src
'''

RETURN = r'''
release:
  description:
    - The release, C(vN). In check mode, the matching release, or null
      when a new one would be made.
  returned: always
  type: str
  sample: v4
digest:
  description: The release's content digest (null in check mode when a new release would be made).
  returned: always
  type: str
  sample: b7e4116c76d7f0ed03908a37bb80b683f36ac931edb3456793ff705f9a93784b
build:
  description: The build id (a sha256 prefix).
  returned: success
  type: str
  sample: f1dc52a79d60
build_sha256:
  description: The artifact's sha256.
  returned: success
  type: str
new:
  description: Whether a new release was (or in check mode would be) made.
  returned: always
  type: bool
imported:
  description: Whether the artifact's bytes were new to the daemon (false in check mode).
  returned: always
  type: bool
config_keys:
  description: The config keys of the release (names only).
  returned: when a release was made or found
  type: list
  elements: str
'''

import os
import re
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.relsupd.core.plugins.module_utils.relsupd import (
    COMMON_ARGS, Relsupd, RelsupdError, config_value, set_args)


def build_src(rs, src, tmpdir):
    """`relsupd build SRC -o TMP/artifact.tar.gz`; returns (path, sha256)."""
    if not os.path.isdir(src):
        raise RelsupdError("src '%s' is not a directory on the target" % src,
                           'usage', 2, [])
    out = os.path.join(tmpdir, 'artifact.tar.gz')
    printed = rs.run(['build', src, '-o', out])
    m = re.search(r'sha256:([0-9a-f]{64})', printed)
    return out, (m.group(1) if m else None)


def resulting_config(rs, app, config):
    """The config a release create would give: the base release's (live,
    else newest) plus config. {} for an app without a release."""
    base = {}
    if rs.ctl('releases', app):
        base = rs.ctl('config', 'show', app, '--reveal').get('config') or {}
    merged = dict(base)
    for key, value in (config or {}).items():
        merged[str(key)] = config_value(value)
    return merged


def find_kept(rs, app, sha256, config):
    """The newest kept release with this build and this resulting config,
    as `release create --reuse` would answer it; None when there is none."""
    releases = rs.ctl('releases', app)
    candidates = [r for r in releases
                  if r.get('build_sha256') == sha256 and not r.get('pruned')]
    if not candidates:
        return None
    wanted = resulting_config(rs, app, config)
    for r in sorted(candidates, key=lambda r: r.get('number', 0), reverse=True):
        if set(r.get('config_keys') or []) != set(wanted):
            continue
        shown = rs.ctl('config', 'show', app, '--release', r['release'], '--reveal')
        if (shown.get('config') or {}) == wanted:
            return r
    return None


def main():
    argument_spec = dict(
        app=dict(type='str', required=True),
        artifact=dict(type='path'),
        src=dict(type='path'),
        config=dict(type='dict', default={}),
    )
    argument_spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=argument_spec,
                           mutually_exclusive=[['artifact', 'src']],
                           required_one_of=[['artifact', 'src']],
                           supports_check_mode=True)
    rs = Relsupd(module)
    p = module.params
    app = p['app']
    tmpdir = tempfile.mkdtemp(prefix='relsupd-release-')
    try:
        try:
            if p['src']:
                artifact, sha256 = build_src(rs, p['src'], tmpdir)
            else:
                artifact = p['artifact']
                if not os.path.isfile(artifact):
                    if module.check_mode:
                        # A copy task before this one would have put it there.
                        module.exit_json(
                            changed=True, release=None, digest=None, new=True,
                            imported=False,
                            msg="artifact '%s' is not on the target (yet): a new "
                                "release would be made" % artifact)
                    module.fail_json(msg="artifact '%s' is not a file on the target"
                                     % artifact)
                sha256 = None
            if sha256 is None:
                sha256 = module.sha256(artifact)

            if module.check_mode:
                rs.ctl('app', 'show', app)  # fails as a real run would on a missing app
                kept = find_kept(rs, app, sha256, p['config'])
                if kept is None:
                    module.exit_json(changed=True, release=None, digest=None,
                                     new=True, imported=False, build_sha256=sha256)
                module.exit_json(changed=False, release=kept['release'],
                                 digest=kept.get('digest'), new=False,
                                 imported=False, build=kept.get('build'),
                                 build_sha256=sha256,
                                 config_keys=kept.get('config_keys') or [])

            imported = rs.ctl('build', 'import', app, artifact)
            made = rs.ctl('release', 'create', app, '--build', imported['id'],
                          '--reuse', *set_args(p['config']))
        except RelsupdError as e:
            rs.fail(e, app=app)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)

    new = bool(made.get('new'))
    module.exit_json(changed=new or bool(imported.get('new')),
                     release=made.get('release'), digest=made.get('digest'),
                     build=made.get('build'), build_sha256=made.get('build_sha256'),
                     new=new, imported=bool(imported.get('new')),
                     config_keys=made.get('config_keys') or [])


if __name__ == '__main__':
    main()

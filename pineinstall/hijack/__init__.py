"""``pineinstall hijack``: take over a running Debian/Ubuntu machine over SSH (docs/hijack.md).

Modules: ``command`` (the command line and the order of checks), ``ssh`` (the session), ``probe``
(the read-only remote script), ``facts`` and ``netconf`` (its output, typed), ``refusals``, ``carry``
(what the new system keeps, merged under the config) and ``plan`` (what is printed).
"""

"""Lightning callbacks, configured for every run by ``conf/callbacks/default.yaml``; which apply to which
module is the protocol table of :mod:`callbacks.protocols`.
"""

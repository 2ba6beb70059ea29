"""Block devices: one module per tool (argv built from data tables, run through ``pineinstall.run``),
plus discovery, waiting, ioctls and busy checks.

The host kernels these tools are tested on parse no partition tables and run no udev daemon, so
nothing here relies on either: partitions reach the kernel through ``partx`` (see :mod:`.partx`),
``/dev/disk/by-*`` names are resolved from blkid and sysfs when udev is not there (:mod:`.discover`).
"""

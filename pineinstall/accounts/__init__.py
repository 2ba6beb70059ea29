"""Account databases of a target root, edited without shadow-utils (busybox systems lack it).

One module per concept: ``dbfile`` (one colon-separated file: parse, lock, atomic replace with a
``-`` backup), ``database`` (the four files together and the operations useradd/usermod/userdel/
groupadd would do), ``logindefs`` (``/etc/login.defs`` and ``/etc/default/useradd``), ``ids``
(UID/GID allocation as shadow-utils does it), ``homes`` (home directories and ``/etc/skel``),
``sshkeys`` (``~/.ssh/authorized_keys``). The stage that drives them is
``pineinstall.stages.accounts``.
"""

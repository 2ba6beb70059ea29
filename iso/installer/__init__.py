"""The Pine installer ISO and PXE artifacts, built from Debian's packages.

    python -m iso.installer build -o pine-installer.iso [--pxe DIR]

root.py: the cached live root (no pineinstall in it); build.py: the per-build squashfs with the current
checkout's pineinstall, the ISO (GRUB for BIOS and UEFI, hybrid) and the PXE files.
"""

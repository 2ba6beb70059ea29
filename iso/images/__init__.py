"""Small bootable test images in Pine's layout, built from Debian's packages and cached.

    from iso.images import ensure_image, parse_report
    img = ensure_image("raw")           # or "ostree", "rootfs"; img.path is read-only: copy it
    report = parse_report(serial_text)  # the guest's PINE-REPORT line as a dict

CLI: ``python -m iso.images build --kind raw|ostree|rootfs -o OUT``.
"""

from .build import KINDS, BuiltImage, cache_dir, copy_out, ensure_image, image_key
from .report import REPORT_END, REPORT_MARKER, parse_report

__all__ = [
    "KINDS",
    "REPORT_END",
    "REPORT_MARKER",
    "BuiltImage",
    "cache_dir",
    "copy_out",
    "ensure_image",
    "image_key",
    "parse_report",
]

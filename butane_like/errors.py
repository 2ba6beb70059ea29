"""The messages of the report, worded as Butane's (``config/common/errors.go``): users grep for them.

Pine's own sections (variant ``pine``) keep their messages in ``variants.pine``.
"""

# The translation as a whole (``Result.error``)
ERR_NO_VARIANT = "error parsing variant; must be specified"
ERR_INVALID_VERSION = "error parsing version; must be a valid semver"
# Butane still registers rhcos 0.1.0, as a translator that refuses with this message.
ERR_RHCOS_REMOVED = "rhcos variant has been removed; use openshift variant instead: https://coreos.github.io/butane/upgrading-openshift/"
ERR_SOURCE = "source config is invalid"
ERR_GENERATED = "config generated was invalid"
ERR_CONFIG_INVALID = "config is not valid"
MISMATCH = (
    "context tree does not match content tree at {path}. Line and column reporting may be "
    "inconsistent. Unused keys may not be reported"
)

# Shared by several objects
ERR_NAME_REQUIRED = 'field "name" is required'
ERR_DUPLICATE = "duplicate entry defined"
ERR_TOO_MANY_SOURCES = "only one of the following can be set: inline, local, source"
ERR_TOO_MANY_UNIT_SOURCES = "only one of the following can be set: contents, contents_local"

# Local files and trees
ERR_FILES_DIR_ESCAPE = "local file path traverses outside the files directory"
ERR_FILE_TYPE = "trees may only contain files, directories, and symlinks"
ERR_NODE_EXISTS = "matching filesystem node has existing contents or different type"
ERR_QUADLET_EXTENSION = (
    "unsupported file extension for quadlet: must be one of .container, .volume, .network, .kube, .image, "
    ".build, .pod, or .artifact"
)
ERR_TEMPLATE_CONTENTS = "template instances cannot have contents or contents_local"
ERR_NO_FILES_DIR = (
    "local file paths are relative to a files directory that must be specified with -d/--files-dir"
)
ERR_TREE_NOT_DIR = "root of tree must be a directory"
ERR_TREE_NO_LOCAL = "local is required"

# Base validation
ERR_DECIMAL_MODE = (
    "unreasonable mode would be reasonable if specified in octal; remember to add a leading zero"
)
ERR_MOUNT_NO_PATH = "path is required if with_mount_unit is true and format is not swap"
ERR_MOUNT_NO_FORMAT = "format is required if with_mount_unit is true"
WARN_MERGE_UNKNOWN_VERSION = (
    "skipping validation for the merge/replace ignition config due to an unkown version"
)

# fcos sugar: storage, boot_device, grub
ERR_MOUNT_FORBIDDEN = "path must be under /etc or /var if with_mount_unit is true"
ERR_LAYOUT_LEGACY = "layout must be one of: aarch64, ppc64le, x86_64"
ERR_LAYOUT = "layout must be one of: aarch64, ppc64le, s390x-eckd, s390x-virt, s390x-zfcp, x86_64"
ERR_TOO_FEW_MIRROR = "mirroring requires at least two devices"
ERR_NO_LUKS_BOOT_DEVICE = "device is required for layouts: s390x-eckd, s390x-zfcp"
ERR_LUKS_BOOT_DEVICE_NAME = (
    "device name must start with /dev/dasd on s390x-eckd layout or /dev/sd on s390x-zfcp layout"
)
ERR_MIRROR_NOT_SUPPORTED = "mirroring not supported on layouts: s390x-eckd, s390x-zfcp, s390x-virt"
ERR_CEX_ARCH = "when using cex the targeted architecture must match s390x"
ERR_CEX_CLEVIS = "cannot use cex with clevis"
ERR_GRUB_PASSWORD = 'field "password_hash" is required'
ERR_REUSE_BY_LABEL = (
    "partitions cannot be reused by label; number must be specified except on boot disk "
    "(/dev/disk/by-id/coreos-boot-disk) or when wipe_table is true"
)
ERR_ROOT_TOO_SMALL = "root should have 8GiB of space assigned"
ERR_ROOT_CONSTRAINED = (
    "root partition cannot expand; it is set to fill available space but is followed by an "
    "auto-positioned partition"
)
ERR_MIRROR_REQUIRES_LAYOUT = "boot_device.layout should be specified when boot_device.mirror is specified"
ERR_WRONG_PARTITION_NUMBER = (
    "incorrect partition number; a new partition will be created using reserved label"
)

# flatcar
ERR_CLEVIS_UNSUPPORTED = "clevis is not supported in this spec version"
ERR_CEX_UNSUPPORTED = "cex is not currently supported on the target platform"

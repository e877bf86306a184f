"""Problems with the annotation store that a user can understand and act on."""

from __future__ import annotations

from tnseg_desktop.errors import UserFacingError


class StoreError(UserFacingError):
    """The annotation store cannot do what was asked."""


class StoreLockedError(StoreError):
    """Another program kept the store locked for longer than the busy timeout."""


class StoreCorruptError(StoreError):
    """A mask file or the database does not hold what the store recorded."""


class UnknownRecordError(StoreError):
    """A study, frame, mask or model version that the store does not have."""

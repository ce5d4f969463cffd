"""Image errors whose messages are containerd's, as the kubelet shows them in events.

A kubelet on containerd writes `Failed to pull image "IMAGE": rpc error: code = CODE desc =
failed to pull and unpack image "REF": failed to resolve reference "REF": REF: not found`.
Everything after `desc = ` is containerd's text; `str()` of a `PullError` is exactly that
text once `pull` has named the image (`ImageError.image`), and `code` is the gRPC code CRI
answers with. The low-level parts raise with only their own detail (`REF: not found`,
`unexpected status from GET request to URL: 401 Unauthorized`); `pull` sets the reference,
and the class decides the prefix: a `ResolveError` happened while resolving the reference
(manifest, auth, platform), the others while copying or unpacking content.
"""

from __future__ import annotations


class ImageError(Exception):
    """Any failure of the image library."""

    code = "Unknown"  # the gRPC status code containerd's CRI service answers with
    reason = "ErrImagePull"  # the container's `state.waiting.reason` the kubelet writes

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.image = ""  # the normalised reference, set by `pull` once known

    def __str__(self) -> str:
        return self.detail


class InvalidReference(ImageError):
    """An image name the reference grammar refuses (the kubelet's `InvalidImageName`)."""

    code = "InvalidArgument"
    reason = "InvalidImageName"


class PullError(ImageError):
    """A pull that failed; `str()` is containerd's `failed to pull and unpack image` text."""

    stage = ""

    def __str__(self) -> str:
        if not self.image:
            return self.detail
        stage = self.stage.format(image=self.image)
        return f'failed to pull and unpack image "{self.image}": {stage}{self.detail}'


class ResolveError(PullError):
    """The reference could not be resolved to a manifest."""

    stage = 'failed to resolve reference "{image}": '


class NotFound(ResolveError):
    """The registry has no such repository, tag or digest."""

    code = "NotFound"


class Unauthorized(ResolveError):
    """The registry or its token server refused the credentials (or their absence)."""


class NoMatchingPlatform(ResolveError):
    """An index without a manifest for this machine's platform."""

    code = "NotFound"


class RegistryUnavailable(ResolveError):
    """The registry could not be reached, or answered with an unexpected status."""


class ContentError(PullError):
    """A blob whose size or digest is not what its descriptor says, or that is too large."""

    stage = "failed to copy: "


class UnpackError(PullError):
    """A layer that cannot be unpacked: wrong diff_id, path escape, unknown compression."""

    def __init__(self, diff_id: str, detail: str) -> None:
        super().__init__(detail)
        self.diff_id = diff_id

    def __str__(self) -> str:
        inner = f"failed to extract layer {self.diff_id}: {self.detail}"
        return f'failed to pull and unpack image "{self.image}": {inner}' if self.image else inner


class NeverPull(ImageError):
    """`imagePullPolicy: Never` and the image is not in the cache (`ErrImageNeverPull`)."""

    reason = "ErrImageNeverPull"

    def __init__(self, image: str) -> None:
        super().__init__(f'Container image "{image}" is not present with pull policy of Never')


def event_message(image: str, exc: ImageError) -> str:
    """The kubelet's (v1.32) warning event for `exc` on the container's `image` as the pod
    spells it: `Failed to pull image "IMAGE": rpc error: code = CODE desc = ...` (reason
    `Failed`), `Failed to apply default image tag ...` for a bad name, and the bare message
    for `Never` (reason `ErrImageNeverPull`)."""
    if isinstance(exc, NeverPull):
        return str(exc)
    if isinstance(exc, InvalidReference):
        return f'Failed to apply default image tag "{image}": {exc}'
    return f'Failed to pull image "{image}": rpc error: code = {exc.code} desc = {exc}'

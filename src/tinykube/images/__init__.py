"""Images for the `container` runtime: pull from a registry, verify, unpack, cache, make rootfs.

A library the node agent uses; it knows nothing of pods. The parts, each one job:

- `reference`: image names as Docker and containerd normalise them (`nginx` ->
  `docker.io/library/nginx:latest`), and which endpoint (scheme, host) serves them.
- `auth`: credentials from a `kubernetes.io/dockerconfigjson` Secret or `~/.docker/config.json`,
  and the `WWW-Authenticate` challenge parser.
- `registry`: the registry v2 client on aiohttp (manifests, token auth, bounded reads, blobs
  streamed with their size and sha256 checked as they arrive).
- `manifest`: media types, manifest and index parsing, platform choice for this machine.
- `unpack`: one layer tar into its own directory, whiteouts kept in overlayfs' form (or OCI's
  marker files when not root), path escapes refused, the diff_id hashed in the same pass.
- `store`: the content-addressed cache in the data directory (blobs by digest, layers by
  diff_id, image records), its size bound and garbage collection.
- `rootfs`: per-container root filesystems from cached layers, overlay or copy.
- `policy`: `imagePullPolicy` as the kubelet applies it (pure).
- `pull`: the whole pull, as containerd's CRI `PullImage` does it.

Errors are `errors.ImageError`s whose text is containerd's, so the kubelet can put them in
`Failed to pull image "...": ...` events as a real node shows them.
"""

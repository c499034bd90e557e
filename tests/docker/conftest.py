"""A real Docker engine for the node layer: a tiny image built here and lab-labelled containers.

No registry is reachable in CI, so the image is built FROM scratch with Debian's
busybox-static (/bin/busybox) from an in-memory build context. Every container the
tests start is removed in the fixture's teardown, also when a test fails.
"""

from __future__ import annotations

import hashlib
import io
import struct
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BUSYBOX = Path("/bin/busybox")
IMAGE_REPO = "cks-lab-test-node"

DOCKERFILE = b"""\
FROM scratch
COPY busybox /bin/busybox
COPY passwd /etc/passwd
COPY group /etc/group
RUN ["/bin/busybox", "mkdir", "-p", "/tmp", "/root", "/usr/bin", "/sbin", "/usr/sbin"]
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
"""
PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
GROUP = b"root:x:0:\nnogroup:x:65534:\n"


def _is_static_elf(path: Path) -> bool:
    """True for an ELF64 little-endian executable without a PT_INTERP (dynamic loader)."""
    head = path.read_bytes()
    if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
        return False
    (phoff,) = struct.unpack_from("<Q", head, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
    types = [struct.unpack_from("<I", head, phoff + i * phentsize)[0] for i in range(phnum)]
    return 3 not in types  # PT_INTERP


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    try:
        import docker
    except ImportError:
        pytest.skip("the docker Python package is not installed")
    try:
        client = docker.from_env()
        client.ping()
    except Exception as err:  # noqa: BLE001 - any failure means: no engine to test against
        pytest.skip(f"no Docker daemon reachable ({err}); .ci/run starts one")
    yield client
    client.close()


@pytest.fixture(scope="session")
def node_image(docker_client: Any) -> str:
    """Tag of the test node image, built once per content and reused afterwards."""
    if not BUSYBOX.is_file():
        pytest.skip("no /bin/busybox: install Debian's busybox-static to build the test image")
    if not _is_static_elf(BUSYBOX):
        pytest.skip("/bin/busybox is not statically linked: install busybox-static")
    import docker.errors

    files = {
        "Dockerfile": DOCKERFILE,
        "busybox": BUSYBOX.read_bytes(),
        "passwd": PASSWD,
        "group": GROUP,
    }
    digest = hashlib.sha256()
    for name, data in sorted(files.items()):
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    tag = f"{IMAGE_REPO}:{digest.hexdigest()[:12]}"
    try:
        docker_client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name == "busybox" else 0o644
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    docker_client.images.build(
        fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True, pull=False
    )
    return tag


class Containers:
    """Starts labelled test containers and removes every one of them at teardown."""

    def __init__(self, client: Any, image: str) -> None:
        self.client = client
        self.image = image
        self.started: list[Any] = []

    def run(self, name: str, labels: dict[str, str], *, start: bool = True, **extra: Any) -> Any:
        self._remove_stale(name)
        kwargs = dict(
            name=name, labels=labels, command=["sleep", "3600"], network_mode="none", **extra
        )
        if start:
            container = self.client.containers.run(self.image, detach=True, **kwargs)
        else:
            container = self.client.containers.create(self.image, **kwargs)
        self.started.append(container)
        container.reload()
        return container

    def _remove_stale(self, name: str) -> None:
        # A crashed earlier run may have left one behind; only these test names are touched.
        import docker.errors

        try:
            self.client.containers.get(name).remove(force=True, v=True)
        except docker.errors.NotFound:
            pass

    def remove_all(self) -> None:
        import docker.errors

        for container in self.started:
            try:
                container.remove(force=True, v=True)
            except docker.errors.NotFound:
                pass


@pytest.fixture(scope="module")
def containers(docker_client: Any, node_image: str) -> Iterator[Containers]:
    box = Containers(docker_client, node_image)
    try:
        yield box
    finally:
        box.remove_all()

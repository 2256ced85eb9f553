"""Network and FUSE volumes: detected from statfs facts (both platforms' shapes faked here), and a
library there uses a rollback journal with one writer at a time."""

from __future__ import annotations

import sys
import threading

import pytest

from app.core import store_safety, volumes
from app.core.store import LibraryBusyError, Store
from app.core.volumes import FsFacts, VolumeKind, classify, facts_from_mac_statfs


@pytest.mark.parametrize(
    ("facts", "kind"),
    [
        (FsFacts(magic=0x6969), VolumeKind.NETWORK),  # NFS
        (FsFacts(magic=0xFF534D42), VolumeKind.NETWORK),  # CIFS
        (FsFacts(magic=0xFE534D42), VolumeKind.NETWORK),  # SMB2/3
        (FsFacts(magic=0x65735546), VolumeKind.FUSE),  # sshfs, rclone mount, ...
        (FsFacts(magic=0xEF53), VolumeKind.LOCAL),  # ext4
        (FsFacts(magic=0x01021994), VolumeKind.LOCAL),  # tmpfs
        (FsFacts(type_name="apfs", local_flag=True), VolumeKind.LOCAL),
        (FsFacts(type_name="smbfs", local_flag=False), VolumeKind.NETWORK),
        (FsFacts(type_name="nfs", local_flag=False), VolumeKind.NETWORK),
        (FsFacts(type_name="afpfs", local_flag=False), VolumeKind.NETWORK),
        (FsFacts(type_name="webdav", local_flag=False), VolumeKind.NETWORK),
        (FsFacts(type_name="macfuse", local_flag=True), VolumeKind.FUSE),
        (FsFacts(type_name="osxfuse", local_flag=False), VolumeKind.FUSE),
        (FsFacts(type_name="someremotefs", local_flag=False), VolumeKind.NETWORK),  # MNT_LOCAL unset decides
        (FsFacts(), VolumeKind.UNKNOWN),
    ],
)
def test_classify_from_statfs_facts(facts, kind):
    assert classify(facts) is kind


def _mac_statfs(type_name: bytes, flags: int) -> bytes:
    """A struct statfs as macOS fills it: f_flags at byte 64, f_fstypename[16] at byte 72."""
    raw = bytearray(2168)
    raw[64:68] = flags.to_bytes(4, sys.byteorder)
    raw[72 : 72 + len(type_name)] = type_name
    raw[88:96] = b"/Volumes"  # f_mntonname follows; must not leak into the type name
    return bytes(raw)


def test_mac_statfs_layout_is_read_at_the_documented_offsets():
    assert facts_from_mac_statfs(_mac_statfs(b"smbfs", 0x0)) == FsFacts(type_name="smbfs", local_flag=False)
    assert facts_from_mac_statfs(_mac_statfs(b"apfs", 0x1000 | 0x1)) == FsFacts(
        type_name="apfs", local_flag=True
    )
    assert classify(facts_from_mac_statfs(_mac_statfs(b"smbfs", 0))) is VolumeKind.NETWORK


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux statfs")
def test_this_machines_temp_folder_is_local(tmp_path):
    assert volumes.linux_facts(tmp_path).magic not in volumes.LINUX_NETWORK
    assert volumes.volume_kind(tmp_path / "not yet" / "lib.sqlite") is VolumeKind.LOCAL


def test_a_library_on_a_local_disk_uses_wal(tmp_path):
    with Store(tmp_path / "lib.sqlite") as s:
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.fixture
def on_network(monkeypatch):
    monkeypatch.setattr(volumes, "volume_kind", lambda path: VolumeKind.NETWORK)
    monkeypatch.setattr(store_safety, "BUSY_TIMEOUT_S", 0.3)


def test_a_library_on_a_network_volume_uses_a_rollback_journal_and_one_writer(tmp_path, on_network):
    db = tmp_path / "lib.sqlite"
    first, second = Store(db), Store(db)
    assert first.conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert first.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with first.transaction():
        first.add_root("/photos", 0.0)
        assert second.roots() == []  # a reader still reads the last committed state
        with pytest.raises(LibraryBusyError, match="being changed by another Fovea"):
            with second.transaction():
                second.add_root("/other", 0.0)
    with second.transaction():  # once the first writer is done, the second may write
        second.add_root("/other", 0.0)
    assert [str(p) for _, p, _ in first.roots()] == ["/photos", "/other"]
    first.close()
    second.close()


def test_a_second_writer_on_a_network_volume_waits_for_the_first(tmp_path, on_network, monkeypatch):
    monkeypatch.setattr(store_safety, "BUSY_TIMEOUT_S", 10.0)
    db = tmp_path / "lib.sqlite"
    first, second = Store(db), Store(db)
    entered = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with first.transaction():
            first.add_root("/photos", 0.0)
            entered.set()
            release.wait(5)

    t = threading.Thread(target=hold)
    t.start()
    entered.wait(5)
    threading.Timer(0.5, release.set).start()
    with second.transaction():  # waits for the first commit instead of failing
        second.add_root("/other", 0.0)
    t.join()
    assert len(second.roots()) == 2
    first.close()
    second.close()

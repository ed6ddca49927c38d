import io
import tarfile

import pytest

from mvsd.data.shards import iter_shard, write_shard
from mvsd.errors import BadInput

SAMPLES = [("a1", {"json": b"{}", "clean.flac": b"xx"}), ("b2", {"json": b"{1}", "image.jpg": b"yyy"})]


def test_write_then_read_groups_members(tmp_path):
    p = tmp_path / "s.tar"
    write_shard(p, SAMPLES)
    assert tarfile.is_tarfile(p)
    got = list(iter_shard(p))
    assert got == [
        ("a1", {"clean.flac": b"xx", "json": b"{}"}),
        ("b2", {"image.jpg": b"yyy", "json": b"{1}"}),
    ]


def test_byte_identical_rewrite_and_no_temp_left(tmp_path):
    write_shard(tmp_path / "a.tar", SAMPLES)
    write_shard(tmp_path / "b.tar", SAMPLES)
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar", "b.tar"]
    with tarfile.open(tmp_path / "a.tar") as t:
        assert all(m.mtime == 0 and m.uid == 0 and m.uname == "" for m in t.getmembers())


def test_failed_write_leaves_nothing(tmp_path):
    def broken():
        yield SAMPLES[0]
        raise RuntimeError("producer died")

    with pytest.raises(RuntimeError):
        write_shard(tmp_path / "x.tar", broken())
    assert list(tmp_path.iterdir()) == []


def _evil_tar(path, names):
    with tarfile.open(path, "w") as t:
        for n in names:
            info = tarfile.TarInfo(n)
            info.size = 2
            t.addfile(info, io.BytesIO(b"ok"))


@pytest.mark.parametrize("name", ["../evil.json", "/etc/passwd.json", "dir/../../x.json", "a/b.json"])
def test_unsafe_member_names_are_refused(tmp_path, name):
    p = tmp_path / "evil.tar"
    _evil_tar(p, ["good.json", name, "good2.json"])
    with pytest.raises(BadInput, match="unsafe tar member name"):
        list(iter_shard(p))
    bad = []
    got = list(iter_shard(p, on_bad=bad.append))
    assert [k for k, _ in got] == ["good", "good2"]
    assert len(bad) == 1 and name in str(bad[0])
    assert not (tmp_path.parent / "evil.json").exists()


def test_truncated_shard_is_a_bad_input(tmp_path):
    p = tmp_path / "t.tar"
    write_shard(p, [("k", {"json": b"x" * 5000})])
    p.write_bytes(p.read_bytes()[:700])
    with pytest.raises(BadInput, match="corrupt or truncated"):
        list(iter_shard(p))


def test_repeated_key_and_member_are_refused(tmp_path):
    p = tmp_path / "dup.tar"
    _evil_tar(p, ["a.json", "b.json", "a.clean.flac", "c.json", "c.json"])
    bad = []
    got = list(iter_shard(p, on_bad=bad.append))
    assert [k for k, _ in got] == ["a", "b", "c"]
    assert len(bad) == 2 and all("repeats a sample" in str(b) for b in bad)


def test_oversized_member_is_refused(tmp_path, monkeypatch):
    import mvsd.data.shards as shards

    monkeypatch.setattr(shards, "MAX_MEMBER_BYTES", 1)
    p = tmp_path / "big.tar"
    _evil_tar(p, ["a.json"])
    with pytest.raises(BadInput, match="limit 1"):
        list(iter_shard(p))

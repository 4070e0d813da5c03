"""The feature cache on disk stays under HEADSTART_CACHE_MAX (least recently used first), `headstart cache info|clear`
say and do what they claim, and runs sharing the cache never read a half-written entry."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from headstart import backbones
from headstart.config import BackboneSpec
from headstart.data import load_examples
from headstart.train import cache, cache_store
from test_bad_input import one_error, run_cli


@pytest.fixture(scope="module")
def lite():
    return backbones.load(BackboneSpec(name="efficientnet-lite0", image_size=32))


@pytest.fixture(scope="module")
def images():
    return load_examples("builtin:digits").inputs[:90]


@pytest.fixture()
def private(tmp_path, monkeypatch):
    monkeypatch.setenv("HEADSTART_CACHE", str(tmp_path))
    cache.clear_memory_cache()
    yield tmp_path / "features"
    cache.clear_memory_cache()


def _embed_three(lite, images):
    for start in (0, 30, 60):
        cache.clear_memory_cache()  # as a later process would: only the disk cache remembers
        cache.embed(lite, images[start:start + 30], 32, "fp32", False)
        time.sleep(0.02)  # distinct modification times


def test_the_cache_keeps_under_its_limit_dropping_the_least_recently_used(private, lite, images, monkeypatch):
    _embed_three(lite, images)
    entries = sorted(private.glob("*.safetensors"), key=lambda p: p.stat().st_mtime)
    assert len(entries) == 3
    one = entries[0].stat().st_size
    cache.clear_memory_cache()
    cache.embed(lite, images[0:30], 32, "fp32", False)  # a read: the first list is now the most recent
    monkeypatch.setenv("HEADSTART_CACHE_MAX", str(int(2.5 * one)))
    cache.clear_memory_cache()
    cache.embed(lite, images[5:35], 32, "fp32", False)  # a fourth entry: two must go
    left = {p.name for p in private.glob("*.safetensors")}
    assert len(left) == 2 and entries[0].name in left and entries[1].name not in left and entries[2].name not in left
    assert sum(p.stat().st_size for p in private.glob("*.safetensors")) <= 2.5 * one


def test_a_zero_limit_writes_nothing_to_disk(private, lite, images, monkeypatch):
    monkeypatch.setenv("HEADSTART_CACHE_MAX", "0")
    cache.embed(lite, images[:10], 32, "fp32", False)
    assert not list(private.glob("*.safetensors"))


def test_cache_info_and_clear_from_the_command_line(private, lite, images, monkeypatch):
    _embed_three(lite, images)
    (private / ".x.safetensors.abc123.tmp").write_bytes(b"left by a killed write")
    size = sum(p.stat().st_size for p in private.glob("*.safetensors"))
    assert cache_store.cache_info()["entries"] == 3 and cache_store.cache_info()["bytes"] == size
    monkeypatch.setenv("HEADSTART_CACHE_MAX", "1.5GB")
    code, output = run_cli("cache", "info")
    assert code == 0 and "1.5 GB" in output, output
    assert [line.split("│")[2].strip() for line in output.splitlines() if "entries" in line] == ["3"]
    code, output = run_cli("cache", "clear")
    assert code == 0 and "removed 4 cached feature file(s)" in output
    assert list(private.iterdir()) == []
    monkeypatch.setenv("HEADSTART_CACHE_MAX", "lots")
    assert "HEADSTART_CACHE_MAX='lots' is not a size" in one_error(*run_cli("cache", "info"))


@pytest.mark.parametrize("text, size", [("4GB", 4 * 10 ** 9), ("500 mb", 5 * 10 ** 8), ("1.5GiB", 3 * 2 ** 29),
                                        ("0", 0), ("123", 123)])
def test_sizes(text, size):
    assert cache_store.parse_size(text) == size


def test_two_runs_sharing_a_small_cache_never_read_a_half_written_entry(tmp_path):
    """Two processes embed the same lists at once under a cap that keeps evicting: neither fails or warns."""
    script = ("import warnings; warnings.simplefilter('error')\n"
              "from headstart import backbones; from headstart.config import BackboneSpec\n"
              "from headstart.data import load_examples; from headstart.train import cache\n"
              "lite = backbones.load(BackboneSpec(name='efficientnet-lite0', image_size=32))\n"
              "images = load_examples('builtin:digits').inputs[:120]\n"
              "for turn in range(3):\n"
              "    for start in range(0, 120, 20):\n"
              "        cache.clear_memory_cache()\n"
              "        assert len(cache.embed(lite, images[start:start + 20], 20, 'fp32', False)) == 20\n")
    env = {**__import__("os").environ, "HEADSTART_CACHE": str(tmp_path), "HEADSTART_CACHE_MAX": "60KB"}
    children = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    for child in children:
        output = child.communicate(timeout=300)[0]
        assert child.returncode == 0, output
    assert sum(p.stat().st_size for p in (tmp_path / "features").glob("*.safetensors")) <= 60_000

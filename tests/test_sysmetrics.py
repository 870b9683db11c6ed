from __future__ import annotations

import subprocess
import sys

from agentdeck.engine.sysmetrics import SystemSampler


def test_sampler_follows_a_new_pid():
    """The runner passes a callable: after a kernel restart the new process is measured."""
    a = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    b = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "x = bytearray(80 << 20); import time; print('ready', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert b.stdout.readline().strip() == b"ready"
        current = {"pid": a.pid}
        got = []
        s = SystemSampler(lambda: current["pid"], got.append, interval_s=60, gpu=False)
        s.start()
        s.sample_once()
        rss_a = [m.value for m in got if m.name == "system/rss_mb"][-1]
        current["pid"] = b.pid
        s.sample_once()
        rss_b = [m.value for m in got if m.name == "system/rss_mb"][-1]
        s.stop()
        assert s.pid == b.pid
        assert rss_b > rss_a + 50  # the 80 MB process is the one measured now
        current["pid"] = None  # kernel gone for a moment: nothing measured, no crash
        s.sample_once()
    finally:
        a.kill()
        b.kill()


def test_gpu_names_from_nvidia_smi_without_nvml(tmp_path, monkeypatch):
    """No pynvml: the names come from nvidia-smi; with neither, none (and no error)."""
    from agentdeck.engine.sysmetrics import gpu_names

    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\nprintf 'NVIDIA H200\\nNVIDIA H200\\n'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert gpu_names() == ["NVIDIA H200", "NVIDIA H200"]
    smi.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    assert gpu_names() == []
    smi.unlink()
    assert gpu_names() == []

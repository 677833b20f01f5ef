"""Devices and the stream: choosing a device by index or name, the reasons for silence, and
real PortAudio streams on ALSA's null device (in a subprocess with its own HOME; see
benchmarks/virtual_alsa.py)."""

from __future__ import annotations

import sys

import pytest

from benchmarks.virtual_alsa import write_virtual_alsa_config
from mosapp.playback.device import Output, OutputDevice, choose_device, describe
from tests.helpers import requires
from tests.playback.conftest import run_isolated

DEVICES = [
    OutputDevice(index=0, name="HDA Intel PCH: ALC3246 Analog (hw:0,0)", hostapi="ALSA", channels=2,
                 default_samplerate=48_000.0, is_default=False),
    OutputDevice(index=3, name="USB Audio: Headphones (hw:1,0)", hostapi="ALSA", channels=2,
                 default_samplerate=44_100.0, is_default=True),
    OutputDevice(index=4, name="USB Audio: Speakers (hw:1,1)", hostapi="ALSA", channels=8,
                 default_samplerate=48_000.0, is_default=False),
]


# ---------------------------------------------------------------------------- choosing a device
def test_the_default_device_is_the_systems_default_or_the_first():
    assert choose_device(DEVICES, None) == (DEVICES[1], "")
    no_default = [DEVICES[0], DEVICES[2]]
    assert choose_device(no_default, None) == (DEVICES[0], "")


def test_a_device_by_index_by_name_by_part_of_a_name_or_itself():
    assert choose_device(DEVICES, 4) == (DEVICES[2], "")
    assert choose_device(DEVICES, DEVICES[0]) == (DEVICES[0], "")
    assert choose_device(DEVICES, "USB Audio: Speakers (hw:1,1)") == (DEVICES[2], "")
    assert choose_device(DEVICES, "headphones") == (DEVICES[1], "")   # part of a name, any case


def test_a_device_that_is_not_there_is_one_sentence_with_the_list():
    listing = '0 "HDA Intel PCH: ALC3246 Analog (hw:0,0)", 3 "USB Audio: Headphones (hw:1,0)", ' \
              '4 "USB Audio: Speakers (hw:1,1)"'
    assert choose_device(DEVICES, 1) == (None, f"there is no output device 1 (output devices: {listing})")
    assert choose_device(DEVICES, "hdmi") == (None, f'there is no output device named "hdmi" (output devices: {listing})')
    assert choose_device(DEVICES, "usb") == (None, f'"usb" names 2 output devices; give one of: {listing}')
    assert choose_device(DEVICES, True) == (None, "True does not name an output device; give an index or a name")
    assert choose_device(DEVICES, 2.0)[0] is None


def test_exception_messages_fit_inside_a_sentence():
    assert describe(OSError("Device unavailable.\n  [PaErrorCode -9985]")) == "Device unavailable. [PaErrorCode -9985]"
    assert describe(RuntimeError()) == "RuntimeError"


def test_an_output_that_was_never_opened_is_silent_and_says_why():
    out = Output()
    assert out.silent_reason == "Playback is silent: no output device has been opened yet."
    assert out.device is None and out.latency_s == 0.0 and out.blocksize == 0 and out.xruns == 0
    out.close()                                                   # safe without a stream
    assert out.silent_reason == "Playback is silent: no output device has been opened yet."


# ---------------------------------------------------------------------------- PortAudio on ALSA null
_HAS_SOUNDDEVICE = True
try:
    import sounddevice  # noqa: F401  (PortAudio initialises with this process's HOME; harmless)
except Exception:  # noqa: BLE001 — whatever stops sounddevice loading (no libportaudio2: OSError) is reported below
    _HAS_SOUNDDEVICE = False


def needs_alsa(test):
    """Linux only (ALSA's null device); there, sounddevice and libportaudio2 must load (tests.helpers.requires)."""
    test = requires(_HAS_SOUNDDEVICE, "sounddevice or libportaudio2 is missing (scripts/setup installs them)")(test)
    return pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ALSA is Linux's")(test)

_HEADER = """
import json, time
import numpy as np
from mosapp.playback import Player, output_devices
rate = 44100
t = np.arange(rate) / rate
a = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
b = (0.5 * np.sin(2 * np.pi * 1000 * t + 1.3)).astype(np.float32)
"""


@needs_alsa
def test_silent_mode_when_the_device_does_not_exist(tmp_path):
    write_virtual_alsa_config(tmp_path, paced=False)
    res = run_isolated(_HEADER + """
p = Player([a, b])
opened_bad = p.open(12345)
bad = p.silent_reason
opened_name = p.open("no such card")
name = p.silent_reason
p.play(); p.select(1)
print(json.dumps({"devices": [d.name for d in output_devices()], "bad": [opened_bad, bad],
                  "name": [opened_name, name], "state": [p.playing, p.selected]}))
""", tmp_path)
    assert res["devices"], "the null ALSA configuration gives a default device"
    opened, reason = res["bad"]
    assert opened is False
    assert reason.startswith("Playback is silent: there is no output device 12345 (output devices: ")
    assert reason.endswith(".") and "default" in reason
    opened, reason = res["name"]
    assert opened is False and 'no output device named "no such card"' in reason
    assert res["state"] == [True, 1]


@needs_alsa
def test_silent_mode_without_any_device_or_without_portaudio(tmp_path):
    # A HOME without ALSA configuration: on a machine without a sound card PortAudio sees no
    # device; on one with a card the default device opens. Either way: no exception, an answer.
    res = run_isolated(_HEADER + """
p = Player([a])
ok = p.open()
print(json.dumps({"ok": ok, "reason": p.silent_reason, "devices": len(output_devices())}))
p.close()
""", tmp_path)
    if res["devices"] == 0:
        assert res["ok"] is False
        assert res["reason"] == "Playback is silent: no audio output device was found."
    else:
        assert (res["ok"] is True) == (res["reason"] is None)
    # sounddevice (or PortAudio under it) missing: the import fails, the player stays usable.
    res = run_isolated("""
import sys, json
sys.modules["sounddevice"] = None
import numpy as np
from mosapp.playback import Player, output_devices
p = Player([np.zeros(1000, np.float32)])
ok = p.open()
p.play()
print(json.dumps({"ok": ok, "reason": p.silent_reason, "devices": output_devices(), "out": p.render(64).shape}))
""", tmp_path)
    assert res["ok"] is False and res["devices"] == []
    assert res["reason"] == ("Playback is silent: the sounddevice package is not installed "
                             "(pip install sounddevice).")
    assert res["out"] == [64, 2]


# ---------------------------------------------------------------------------- real streams
@pytest.mark.slow
@needs_alsa
def test_real_stream_on_the_alsa_null_device(tmp_path):
    """pcm.!default { type null }: the stream opens, the callback runs, playback reaches the end
    (the null device takes samples as fast as they come, so this is faster than real time)."""
    write_virtual_alsa_config(tmp_path, paced=False)
    assert (tmp_path / ".asoundrc").read_text() == "pcm.!default {\n    type null\n}\n"
    res = run_isolated(_HEADER + """
done = []
p = Player([a, b], on_finished=lambda: done.append(time.perf_counter()))
ok = p.open(blocksize=256)
reason, device = p.silent_reason, p.device.name if p.device else None
p.play()
t0 = time.perf_counter()
while not done and time.perf_counter() - t0 < 20:
    time.sleep(0.01)
res = {"ok": ok, "reason": reason, "device": device, "finished": len(done), "pos": p.position_s,
       "playing": p.playing, "heard": p.heard_to_end, "counts": p.play_counts, "listened": p.listened_s}
p.close()
res["closed"] = p.silent_reason
print(json.dumps(res))
""", tmp_path)
    assert res["ok"] is True and res["reason"] is None and res["device"] == "default"
    assert res["finished"] == 1 and res["pos"] == 1.0 and res["playing"] is False
    assert res["heard"] == [True, False] and res["counts"] == [1, 0] and res["listened"] == [1.0, 0.0]
    assert res["closed"] == "Playback is silent: the output stream was closed."


@pytest.mark.slow
@needs_alsa
def test_real_stream_advances_in_real_time_and_switches(tmp_path):
    """The null device paced like a sound card (ALSA file plugin, pipe read at 44.1 kHz)."""
    write_virtual_alsa_config(tmp_path, paced=True)
    res = run_isolated(_HEADER + """
p = Player([np.tile(a, 10), np.tile(b, 10)])
ok = p.open(blocksize=256)
p.play()
time.sleep(0.3)
t1, x1 = time.perf_counter(), p.position_s
time.sleep(1.0)
t2, x2 = time.perf_counter(), p.position_s
p.select(1)
seq, t_sel = p.command_seq, time.perf_counter()
while p.applied[0] < seq and time.perf_counter() - t_sel < 2:
    time.sleep(0.0005)
latency = p.applied[1] - t_sel
time.sleep(0.2)
res = {"ok": ok, "reason": p.silent_reason, "speed": (x2 - x1) / (t2 - t1), "latency": latency,
       "block": p.blocksize, "counts": p.play_counts, "selected": p.selected, "xruns": p.xruns,
       "listened": p.listened_s}
p.pause()
time.sleep(0.2)
y1 = p.position_s
time.sleep(0.3)
res["paused_still"] = p.position_s == y1 and not p.playing
p.close()
print(json.dumps(res))
""", tmp_path)
    assert res["ok"] is True and res["reason"] is None and res["block"] == 256
    assert 0.8 < res["speed"] < 1.25, res            # about one second of audio per second
    assert 0 <= res["latency"] < 0.1, res             # a few ms on an idle machine
    assert res["counts"] == [1, 1] and res["selected"] == 1
    assert res["listened"][0] > 1.0 and res["listened"][1] > 0.1
    assert res["paused_still"]



# ---------------------------------------------------------------------------- the playback margin (issue 26)

def test_a_sound_server_starts_with_a_larger_block_than_a_card_and_underruns_widen_it():
    """Through a busy machine's sound server 256-frame blocks underran (3 s of audio took 13-30 s):
    the block and latency now follow the device, and grow after underruns, up to MAX_BLOCK."""
    from mosapp.playback.device import HARDWARE_BLOCK, MAX_BLOCK, SERVER_BLOCK, initial_margin, wider_margin

    card = DEVICES[0]
    servers = [OutputDevice(index=5, name="pulse", hostapi="ALSA", channels=32, default_samplerate=44_100.0,
                            is_default=False),
               OutputDevice(index=6, name="default", hostapi="ALSA", channels=32, default_samplerate=44_100.0,
                            is_default=True),
               OutputDevice(index=0, name="Built-in Output", hostapi="PipeWire", channels=2,
                            default_samplerate=48_000.0, is_default=True)]
    assert initial_margin(card) == (HARDWARE_BLOCK, "low") == (256, "low")
    assert all(initial_margin(d) == (SERVER_BLOCK, "high") for d in servers)
    steps, block = [], HARDWARE_BLOCK
    while (wider := wider_margin(block)) is not None:
        block = wider[0]
        steps.append(wider)
    assert steps == [(512, "high"), (1024, "high"), (2048, "high"), (4096, "high")] and block == MAX_BLOCK


@needs_alsa
def test_underruns_reopen_the_stream_with_a_larger_block_and_are_counted(tmp_path):
    """On ALSA's default device (a plugin: the larger start), underruns PortAudio reports make
    keep_margin reopen the stream with twice the block, playing on from the same position; the
    count survives the reopening. (The null device never underruns by itself: its callback's
    counter is set as PortAudio's underflow flag would set it.)"""
    write_virtual_alsa_config(tmp_path, paced=False)
    res = run_isolated(_HEADER + """
p = Player([a, b])
ok = p.open()
first = p.blocksize
p.set_loop(0.0, 1.0)  # the null device plays faster than real time: loop, so it is still playing
p.play()
time.sleep(0.05)
quiet = p.keep_margin()
p._output.xruns += 3   # three callbacks with status.output_underflow
widened = p.keep_margin()
res = {"ok": ok, "first": first, "quiet": quiet, "widened": widened, "second": p.blocksize,
       "playing": p.playing, "underruns": p.underruns, "reason": p.silent_reason}
p._output.xruns += 1
res["one_more"] = p.keep_margin()
res["underruns_after"] = p.underruns
fixed = Player([a])
fixed.open(blocksize=256)
fixed._output.xruns += 5
res["fixed"] = [fixed.keep_margin(), fixed.blocksize, fixed.underruns]
fixed.close()
p.close()
print(json.dumps(res))
""", tmp_path)
    assert res["ok"] is True and res["reason"] is None
    assert res["first"] == 1024 and res["quiet"] is False
    assert res["widened"] is True and res["second"] == 2048 and res["playing"] is True
    assert res["underruns"] == 3 and res["one_more"] is False and res["underruns_after"] == 4
    assert res["fixed"] == [False, 256, 5]  # a block size given by the caller is kept

"""Audio playback through PortAudio (``sounddevice``): devices, mixing, transport."""

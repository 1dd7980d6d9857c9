"""media_decode: a media file (audio, image or video) decoded into Waveform, Image or Video payloads."""

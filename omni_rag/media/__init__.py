"""Media decoding with PyAV that yields the arrays qwen_omni_utils would produce.

Every function raises :class:`omni_rag.errors.MediaError` with a precise reason on bad input;
callers that know the item index and field wrap it into an ``OmniInputError``.
"""

from omni_rag.media.audio import SAMPLE_RATE, iter_audio_windows, load_audio
from omni_rag.media.fetch import fetch_url, local_file
from omni_rag.media.image import load_image
from omni_rag.media.probe import MediaInfo, MediaKind, probe
from omni_rag.media.video import VIDEO_OPTIONS, DecodedVideo, load_video

__all__ = [
    "SAMPLE_RATE",
    "VIDEO_OPTIONS",
    "DecodedVideo",
    "MediaInfo",
    "MediaKind",
    "fetch_url",
    "iter_audio_windows",
    "load_audio",
    "load_image",
    "load_video",
    "local_file",
    "probe",
]

"""The wire between a watched training script and the windows that show it: framed, versioned and
pickle-free (a frame is a JSON header plus raw numeric arrays, every field checked before use), with a
token handshake. Qt-free and torch-free: numpy and the standard library only, so the user's script pays
nothing for it but what it uses. See docs/wire.md.
"""

from explorer.core.wire.auth import ROLES, new_token, read_token_file, token_file_path, tokens_equal, write_token_file
from explorer.core.wire.client import FrameClient
from explorer.core.wire.frame import (
    ALLOWED_DTYPES,
    DEFAULT_MAX_BODY,
    MAGIC,
    MAX_ARRAYS,
    MAX_HEADER,
    WIRE_VERSION,
    ConnectionClosed,
    Frame,
    WireError,
    decode_frame,
    encode_frame,
    read_frame,
)
from explorer.core.wire.server import CLIENT_MAX_BODY, HELLO_TIMEOUT, MAX_CLIENTS, STALL_TIMEOUT, FrameServer

__all__ = ["ALLOWED_DTYPES", "CLIENT_MAX_BODY", "DEFAULT_MAX_BODY", "HELLO_TIMEOUT", "MAGIC", "MAX_ARRAYS",
           "MAX_CLIENTS", "MAX_HEADER", "ROLES", "STALL_TIMEOUT", "WIRE_VERSION", "ConnectionClosed", "Frame",
           "FrameClient", "FrameServer", "WireError", "decode_frame", "encode_frame", "new_token",
           "read_frame", "read_token_file", "token_file_path", "tokens_equal", "write_token_file"]

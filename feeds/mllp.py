"""The MLLP gateway (``medkg feeds serve``) and an MLLP client (``medkg feeds send``).

The gateway reads each frame with ``hl7``'s asyncio ``MLLPStreamReader.readblock()`` (the raw bytes, before
anything is parsed; ``readmessage()`` would parse first and decode as ASCII), then:

1. parses it (:func:`feeds.hl7v2.parse`, encoding from MSH-18 when it names UTF-8 or GB18030, else the
   configured ``MEDKG_FEEDS_ENCODING``);
2. stores it durably: an accepted message is appended, byte for byte, to the main stream; one that cannot
   be accepted goes to the dead-letter stream with the reason (Valkey with ``appendfsync always``: the
   append returns once it is on disk);
3. only then answers: ``AA`` (``CA`` in enhanced mode, MSH-15 set) for a stored message, ``AR``/``AE``
   (``CR``/``CE``) with the reason in MSA-3 and ERR-8 for one that is not accepted. When the buffer cannot
   be reached within ``store_wait_s`` the answer is ``AE`` "durable store unavailable": nothing was stored,
   and the sender resends.

Framing errors: a frame that does not begin with ``<VT>`` gets ``AR``; a frame over
``MEDKG_FEEDS_MAX_FRAME_BYTES`` gets ``AR`` and the connection is closed (the rest of that frame cannot be
told apart from the next one). A connection idle for ``idle_timeout_s`` is closed.

The client (:func:`send_messages`) frames messages, waits for each acknowledgement with a timeout, and
reports the MSA code per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from core.records import utcnow
from feeds.buffer import Buffer, BufferTarget
from feeds.hl7v2 import ENCODINGS, FeedError, ack, ack_code, decode, header, parse

log = logging.getLogger("medkg.feeds.mllp")

VT, FS, CR = b"\x0b", b"\x1c", b"\r"
_CHARSETS = {"UNICODE UTF-8": "utf-8", "UTF-8": "utf-8", "UTF8": "utf-8", "GB18030": "gb18030",
             "GB 18030-2000": "gb18030", "GB18030-2000": "gb18030", "GB 18030": "gb18030"}


def message_encoding(raw: bytes, default: str) -> str:
    """MSH-18 (character set) when it names UTF-8 or GB18030, else ``default``. MSH is ASCII in both."""
    first = raw.split(b"\r", 1)[0].split(b"\n", 1)[0]
    if not first.startswith(b"MSH") or len(first) < 4:
        return default
    fields = first.decode("latin-1").split(chr(first[3]))
    charset = fields[17].split("~")[0].strip().upper() if len(fields) > 17 else ""
    return _CHARSETS.get(charset, default)


@dataclass
class Decision:
    """What the gateway did with one frame: the ACK text and where the frame went."""

    ack: str
    code: str
    stored: str  # "stream" | "dead" | "none"
    entry: str = ""
    reason: str = ""
    encoding: str = "utf-8"


class Gateway:
    """Accepts frames (bytes) and stores them; :meth:`accept` is synchronous (it runs in a worker thread of
    the asyncio server) and never raises."""

    def __init__(self, target: BufferTarget, encoding: str = "utf-8", store_wait_s: float = 5.0):
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}")
        self.target, self.encoding, self.store_wait_s = target, encoding, store_wait_s
        self._local = threading.local()

    @property
    def buffer(self) -> Buffer:
        b = getattr(self._local, "buffer", None)
        if b is None:
            b = self._local.buffer = self.target.connect(timeout=5.0)
        return b

    def accept(self, raw: bytes, peer: str = "") -> Decision:
        encoding = message_encoding(raw, self.encoding)
        try:
            msg = parse(raw, encoding)
        except FeedError as exc:
            return self._refuse(raw, exc.code, exc.reason, encoding, peer)
        h = header(decode(raw, encoding))
        enhanced = msg.ack_mode == "enhanced"
        try:
            entry = self.buffer.append({"raw": raw, "source": "mllp", "encoding": encoding,
                                        "received_at": utcnow().isoformat(), "peer": peer,
                                        "control_id": msg.control_id, "type": msg.type}, wait_s=self.store_wait_s)
        except Exception as exc:  # noqa: BLE001 - nothing stored: the sender must resend
            reason = f"durable store unavailable, resend later ({type(exc).__name__})"
            log.warning("%s: %s", msg.control_id, reason)
            code = ack_code(False, False, enhanced)
            return Decision(ack(h, code, reason), code, "none", reason=reason, encoding=encoding)
        code = ack_code(True, False, enhanced)
        return Decision(ack(h, code), code, "stream", entry, encoding=encoding)

    def refuse_frame(self, reason: str, raw: bytes = b"", peer: str = "") -> Decision:
        """A frame that could not even be read (framing, size): AR, kept in the dead-letter stream."""
        return self._refuse(raw, "AR", reason, self.encoding, peer, stage="gateway-frame")

    def _refuse(self, raw: bytes, code: str, reason: str, encoding: str, peer: str,
                stage: str = "gateway") -> Decision:
        h = None
        with contextlib.suppress(Exception):
            h = header(decode(raw, encoding))
        if h is None:  # undecodable body: MSH is ASCII, read it alone so the ACK can name the control id
            with contextlib.suppress(Exception):
                h = header(re.split(rb"\r|\n", raw, maxsplit=1)[0].decode("latin-1"))
        enhanced = bool(h and h.accept_ack.strip())
        code = ack_code(False, code == "AR", enhanced)
        stored, entry = "dead", ""
        try:
            entry = self.buffer.dead_letter(raw, stage, reason, source="mllp", wait_s=self.store_wait_s,
                                            peer=peer, encoding=encoding, ack=code,
                                            control_id=h.control_id if h else "")
        except Exception as exc:  # noqa: BLE001 - refused all the same; the sender keeps its copy
            log.warning("dead letter not stored (%s): %s", exc, reason)
            stored = "none"
        return Decision(ack(h, code, reason), code, stored, entry, reason, encoding)


class GatewayServer:
    """The asyncio MLLP server around a :class:`Gateway`."""

    def __init__(self, gateway: Gateway, host: str = "127.0.0.1", port: int = 2575, max_frame_bytes: int = 1 << 20,
                 idle_timeout_s: float = 300.0, workers: int = 4):
        self.gateway, self.host, self.port = gateway, host, port
        self.max_frame_bytes, self.idle_timeout_s = max_frame_bytes, idle_timeout_s
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mllp-store")
        self.server: asyncio.base_events.Server | None = None
        self.stats = {"frames": 0, "accepted": 0, "refused": 0, "unavailable": 0, "connections": 0}

    async def start(self) -> int:
        import hl7.mllp

        self.server = await hl7.mllp.start_hl7_server(self._client, host=self.host, port=self.port,
                                                      limit=self.max_frame_bytes, encoding="ascii")
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def serve_forever(self) -> None:
        if self.server is None:
            await self.start()
        async with self.server:
            await self.server.serve_forever()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        self.executor.shutdown(wait=True)

    async def _client(self, reader, writer) -> None:
        from hl7.mllp import InvalidBlockError

        peer = writer.get_extra_info("peername")
        peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.stats["connections"] += 1
        loop = asyncio.get_running_loop()
        try:
            while True:
                close_after = False
                try:
                    block = await asyncio.wait_for(reader.readblock(), self.idle_timeout_s)
                    decision = await loop.run_in_executor(self.executor, self.gateway.accept, bytes(block), peer)
                except asyncio.IncompleteReadError as exc:
                    if exc.partial.strip(b"\r\n\x0b\x1c "):
                        await loop.run_in_executor(self.executor, self.gateway.refuse_frame,
                                                   "connection closed inside a frame (no <FS><CR>)",
                                                   bytes(exc.partial[:self.max_frame_bytes]), peer)
                    break
                except InvalidBlockError:
                    decision = await loop.run_in_executor(self.executor, self.gateway.refuse_frame,
                                                          "frame does not begin with <VT> (0x0B)", b"", peer)
                except ValueError:  # over the limit: the reader dropped what it had
                    decision = await loop.run_in_executor(
                        self.executor, self.gateway.refuse_frame,
                        f"frame exceeds the limit of {self.max_frame_bytes} bytes", b"", peer)
                    close_after = True
                except TimeoutError:
                    break
                self.stats["frames"] += 1
                self.stats["accepted" if decision.stored == "stream" else
                           "unavailable" if decision.stored == "none" and decision.code in ("AE", "CE")
                           else "refused"] += 1
                writer.writeblock(decision.ack.encode(decision.encoding, "replace"))
                await writer.drain()
                if close_after:
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
                await writer.wait_closed()


def serve(target: BufferTarget, host: str, port: int, encoding: str, max_frame_bytes: int,
          ready=None) -> None:
    """Run the gateway until interrupted; ``ready(port)`` is called once it listens."""
    async def main():
        srv = GatewayServer(Gateway(target, encoding), host, port, max_frame_bytes)
        bound = await srv.start()
        if ready:
            ready(bound)
        try:
            await srv.serve_forever()
        finally:
            await srv.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


# --- client -----------------------------------------------------------------------------------------------
_MSH_START = re.compile(rb"(?:^|[\r\n])(?=MSH)")


def split_messages(data: bytes) -> list[bytes]:
    """The messages of a file: MLLP framing characters removed, a new message at each line starting with
    ``MSH``; segment separators normalised to ``\\r``."""
    data = data.replace(VT, b"").replace(FS, b"")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    starts = [m.start() for m in _MSH_START.finditer(data)]
    out = []
    for a, b in zip(starts, starts[1:] + [len(data)]):
        chunk = data[a:b].lstrip(b"\r\n")
        segs = [s for s in re.split(rb"\r\n|\n|\r", chunk) if s.strip()]
        if segs:
            out.append(b"\r".join(segs) + b"\r")
    return out


def frame(message: bytes) -> bytes:
    return VT + message + FS + CR


@dataclass
class Ack:
    code: str  # MSA-1, or "" when no answer came
    control_id: str
    text: str  # MSA-3, or the error


def read_ack(data: bytes, encoding: str = "utf-8") -> Ack:
    text = data.decode(encoding, "replace")
    for seg in re.split(r"\r\n|\n|\r", text):
        if seg.startswith("MSA"):
            f = seg.split(seg[3]) if len(seg) > 3 else [seg]
            return Ack(f[1] if len(f) > 1 else "", f[2] if len(f) > 2 else "", f[3] if len(f) > 3 else "")
    return Ack("", "", "answer has no MSA segment")


class MllpClient:
    """A blocking MLLP connection: :meth:`send` one message, get its :class:`Ack`."""

    def __init__(self, host: str, port: int, timeout: float = 30.0, max_ack_bytes: int = 1 << 20):
        self.host, self.port, self.timeout, self.max_ack_bytes = host, port, timeout, max_ack_bytes
        self.sock: socket.socket | None = None
        self._buf = b""

    def connect(self) -> None:
        self.close()
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self._buf = b""

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        self.sock = None

    def send_raw(self, data: bytes) -> bytes:
        """Send bytes as they are; return the next acknowledgement frame's content."""
        if self.sock is None:
            self.connect()
        self.sock.sendall(data)
        return self.read_frame()

    def read_frame(self) -> bytes:
        deadline = time.monotonic() + self.timeout
        while FS + CR not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no acknowledgement within the timeout")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed before the acknowledgement")
            self._buf += chunk
            if len(self._buf) > self.max_ack_bytes:
                raise ValueError("acknowledgement too large")
        block, _, self._buf = self._buf.partition(FS + CR)
        return block[block.find(VT) + 1:] if VT in block else block

    def send(self, message: bytes, encoding: str = "utf-8") -> Ack:
        return read_ack(self.send_raw(frame(message)), encoding)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def send_messages(host: str, port: int, messages: list[bytes], timeout: float = 30.0, retries: int = 0,
                  retry_pause_s: float = 0.5) -> list[Ack]:
    """Send each message, in order, on one connection (reconnecting when it drops); with ``retries``, a
    message answered "unavailable" (AE/CE without storage) or not answered at all is sent again."""
    acks = []
    client = MllpClient(host, port, timeout)
    try:
        for msg in messages:
            attempt = 0
            while True:
                try:
                    a = client.send(msg, message_encoding(msg, "utf-8"))
                except (OSError, TimeoutError, ConnectionError) as exc:
                    client.close()
                    a = Ack("", "", f"{type(exc).__name__}: {exc}")
                if (a.code in ("AA", "CA", "AR", "CR") or (a.code in ("AE", "CE") and "unavailable" not in a.text)
                        or attempt >= retries):
                    break
                attempt += 1
                time.sleep(retry_pause_s)
            acks.append(a)
    finally:
        client.close()
    return acks

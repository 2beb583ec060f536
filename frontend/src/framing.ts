/**
 * Decoding of the server's binary terminal frames (docs/protocol.md, "frames"):
 * one byte 0xBF, a 4-byte big-endian length, then that many bytes of UTF-8.
 *
 * The server sends exactly one frame per WebSocket message; this decoder also accepts several
 * frames back to back, and rejects anything malformed instead of guessing.
 */

export const MAGIC = 0xbf;
export const HEADER_SIZE = 5;

export class FrameError extends Error {
  override name = "FrameError";
}

/** Split one binary message into the payloads of its frames (views on the same buffer). */
export function decodeFrames(message: ArrayBuffer): Uint8Array[] {
  const view = new DataView(message);
  const frames: Uint8Array[] = [];
  let offset = 0;
  if (message.byteLength === 0) throw new FrameError("empty binary message");
  while (offset < message.byteLength) {
    if (message.byteLength - offset < HEADER_SIZE) {
      throw new FrameError(`truncated frame header at byte ${offset}`);
    }
    const magic = view.getUint8(offset);
    if (magic !== MAGIC) {
      throw new FrameError(`bad magic byte 0x${magic.toString(16)} at byte ${offset}`);
    }
    const length = view.getUint32(offset + 1, false);
    const start = offset + HEADER_SIZE;
    if (start + length > message.byteLength) {
      throw new FrameError(
        `frame at byte ${offset} declares ${length} bytes, only ${message.byteLength - start} follow`,
      );
    }
    frames.push(new Uint8Array(message, start, length));
    offset = start + length;
  }
  return frames;
}

/** Build a frame (the inverse of decodeFrames; used by tests and by nothing else). */
export function encodeFrame(text: string): ArrayBuffer {
  const data = new TextEncoder().encode(text);
  const buffer = new ArrayBuffer(HEADER_SIZE + data.length);
  const view = new DataView(buffer);
  view.setUint8(0, MAGIC);
  view.setUint32(1, data.length, false);
  new Uint8Array(buffer, HEADER_SIZE).set(data);
  return buffer;
}

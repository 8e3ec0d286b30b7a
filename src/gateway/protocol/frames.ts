/**
 * Splitting a byte stream into PostgreSQL protocol messages, without decoding them: the gateway
 * forwards most messages as the bytes it received and decodes only the few it acts on.
 *
 * Two framings: the startup packet (int32 length, then the body, no type byte) and every later
 * message (type byte, int32 length that counts itself, body). A length outside the allowed range
 * is a protocol violation the caller reports and closes on; nothing waits for bytes that a bogus
 * length announced.
 */

/** One message: its type byte (0 for the untyped startup packet) and its whole frame (header included). */
export interface Frame {
  readonly type: number;
  readonly bytes: Buffer;
}

export class FrameError extends Error {}

/** PostgreSQL's own bound on a startup packet (MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP_BYTES = 10_000;

/**
 * Accumulates chunks and yields whole frames. `typed` switches from the startup framing to the
 * regular one (after the startup packet, or after an SSLRequest is answered).
 */
export class FrameReader {
  #chunks: Buffer[] = [];
  #buffered = 0;
  typed: boolean;
  readonly #maxBytes: number;

  constructor(options: { typed: boolean; maxMessageBytes: number }) {
    this.typed = options.typed;
    this.#maxBytes = options.maxMessageBytes;
  }

  /** Bytes received that do not yet make a whole frame. */
  get pending(): number {
    return this.#buffered;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  /**
   * The next whole frame, or undefined until more bytes arrive.
   * @throws FrameError on a length no valid message has.
   */
  next(): Frame | undefined {
    const header = this.typed ? 5 : 4;
    if (this.#buffered < header) return undefined;
    const head = this.#peek(header);
    const type = this.typed ? (head[0] as number) : 0;
    const length = head.readInt32BE(this.typed ? 1 : 0);
    if (this.typed) {
      if (length < 4 || length > this.#maxBytes) throw new FrameError(`invalid message length ${length} for message type "${printable(type)}"`);
    } else if (length < 8 || length > MAX_STARTUP_BYTES) {
      throw new FrameError(`invalid startup packet length ${length}`);
    }
    const total = this.typed ? length + 1 : length;
    if (this.#buffered < total) return undefined;
    return { type, bytes: this.#take(total) };
  }

  /**
   * Every whole frame at the front of the buffer that `take` accepts, as one contiguous slice (to
   * forward a burst untouched, without a Buffer per message); undefined when the first is not
   * accepted or not whole. `take` sees each frame's type and where it lies in `buffer`.
   */
  run(take: (type: number, buffer: Buffer, start: number, end: number) => boolean): Buffer | undefined {
    if (!this.typed) return undefined;
    this.#compact();
    const buffer = this.#chunks[0];
    if (buffer === undefined) return undefined;
    let offset = 0;
    while (buffer.length - offset >= 5) {
      const type = buffer[offset] as number;
      const length = buffer.readInt32BE(offset + 1);
      if (length < 4 || length > this.#maxBytes) break; // next() reports it
      if (buffer.length - offset < length + 1 || !take(type, buffer, offset, offset + length + 1)) break;
      offset += length + 1;
    }
    if (offset === 0) return undefined;
    return this.#take(offset);
  }

  /** Bytes buffered past the frames read so far (e.g. a TLS handshake a client sent too early). */
  drain(): Buffer {
    const all = Buffer.concat(this.#chunks, this.#buffered);
    this.#chunks = [];
    this.#buffered = 0;
    return all;
  }

  #compact(): void {
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks, this.#buffered)];
  }

  #peek(n: number): Buffer {
    const first = this.#chunks[0] as Buffer;
    if (first.length >= n) return first;
    this.#compact();
    return this.#chunks[0] as Buffer;
  }

  #take(n: number): Buffer {
    const first = this.#chunks[0] as Buffer;
    if (first.length === n) {
      this.#chunks.shift();
      this.#buffered -= n;
      return first;
    }
    if (first.length > n) {
      this.#chunks[0] = first.subarray(n);
      this.#buffered -= n;
      return first.subarray(0, n);
    }
    this.#compact();
    return this.#take(n);
  }
}

export function printable(type: number): string {
  return type >= 0x20 && type < 0x7f ? String.fromCharCode(type) : `0x${type.toString(16).padStart(2, '0')}`;
}

/**
 * Flow control (docs/protocol.md, "Flow control"): the page acks what xterm.js has written, so
 * the server keeps at most its window (64 KiB) of output in flight and the page never queues
 * seconds of output it cannot paint. Pure: counts only; the connection sends the acks.
 */

/**
 * Bytes written between two acks at most: a quarter of the server's window (its frames to an
 * acking page are at most this big too), so the window keeps moving while the page paints:
 * one ack per frame of a flood; typing's echoes, a few bytes each, go with a later batch.
 */
export const ACK_BATCH = 16 * 1024;

export class Acks {
  private written = 0;
  private acked = 0;

  /**
   * xterm.js finished writing a frame of `bytes` data bytes: the total to ack now, or null
   * to wait for more.
   */
  wrote(bytes: number): number | null {
    this.written += bytes;
    if (this.written - this.acked < ACK_BATCH) return null;
    this.acked = this.written;
    return this.acked;
  }
}
